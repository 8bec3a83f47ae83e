"""The batch-size sweep on a tiny torchvision model and a tiny ImageFolder tree."""

import shutil

import mlflow
import pytest

import evonorm_cli


@pytest.fixture(scope="module")
def tiny_folder(cifar_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-cifar-sweep")
    for split, k in (("train", 4), ("test", 1)):
        for cls in sorted(p.name for p in (cifar_dir / split).iterdir()):
            (root / split / cls).mkdir(parents=True)
            for f in sorted((cifar_dir / split / cls).iterdir())[:k]:
                shutil.copy(f, root / split / cls / f.name)
    return root


@pytest.mark.slow
def test_sweep_end_to_end_writes_the_plot_and_logs(tiny_folder, tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = tmp_path / "tiny.toml"
    config.write_text(f'device = "cpu"\n[data]\nsource = "{tiny_folder}"\nval_size = 10\n'
                      "[train]\nsteps = 1\nbatch_size = 4\nlr = 0.05\n")
    out = tmp_path / "sweep.png"
    assert evonorm_cli.main(["sweep", "evonorm_s0", "--model", "mobilenet_v3_small", "--config", str(config),
                             "--batch-sizes", "4", "2", "--images", "4", "--references", "bn_relu",
                             "--out", str(out), "--tracking-uri", uri, "--experiment", "sweep-test"]) == 0
    printed = capsys.readouterr().out
    assert out.exists() and "evonorm_s0" in printed
    rows = [line.split() for line in printed.splitlines() if line.strip()[:1].isdigit()]
    assert [(r[0], r[1], r[2]) for r in rows[:2]] == [("4", "1", "0.0500"), ("2", "2", "0.0250")]
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["sweep-test"], output_format="list")
    labels = sorted(r.data.tags.get("evonorm.layer", "") for r in runs)
    assert labels == ["", "bn_relu@2", "bn_relu@4", "evonorm_s0@2", "evonorm_s0@4"]
