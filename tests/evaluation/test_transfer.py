"""Transfer into torchvision networks: which positions are replaced, and a tiny study end to end."""

import shutil

import mlflow
import pytest
import torch
from torch import nn

import evonorm_cli
from evaluation import transfer
from evaluation.config import DataConfig, TrainConfig
from gp import Affine, GenomeLayer, zoo


@pytest.fixture(scope="module")
def tiny_folder(cifar_dir, tmp_path_factory):
    """An ImageFolder tree with 6 training and 2 test images per class."""
    root = tmp_path_factory.mktemp("tiny-cifar")
    for split, k in (("train", 6), ("test", 2)):
        for cls in sorted(p.name for p in (cifar_dir / split).iterdir()):
            (root / split / cls).mkdir(parents=True)
            for f in sorted((cifar_dir / split / cls).iterdir())[:k]:
                shutil.copy(f, root / split / cls / f.name)
    return root


def cfg_for(folder, **changes):
    return transfer.TransferConfig(model="mobilenet_v3_small", data=DataConfig(source=str(folder), val_size=10),
                                   train=TrainConfig(steps=1, batch_size=8, lr=0.05), device="cpu", **changes)


def test_resnet18_pairs_become_the_layer_and_residual_relu_stays():
    factory = transfer.native_factory("bn_relu")
    model, pairs, alone = transfer.build_model("resnet18", transfer.layer_factory(zoo.get("evonorm_s0")),
                                               num_classes=10, small_stem=True, seed=0, device=torch.device("cpu"))
    assert pairs == ["bn1"] + [f"layer{i}.{j}.bn1" for i in range(1, 5) for j in (0, 1)]
    assert sorted(alone) == sorted([f"layer{i}.{j}.bn2" for i in range(1, 5) for j in (0, 1)] +
                                   [f"layer{i}.0.downsample.1" for i in (2, 3, 4)])
    assert isinstance(model.get_submodule("layer1.0.bn1"), GenomeLayer)
    assert isinstance(model.get_submodule("layer1.0.bn2"), Affine)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    # the ReLU after each residual addition is still called: 8 blocks
    assert sum(1 for n in model.graph.nodes if n.op == "call_module" and n.target.endswith(".relu")) == 8
    assert model.conv1.stride == (1, 1) and isinstance(model.maxpool, nn.Identity)
    ref, _, _ = transfer.build_model("resnet18", factory, num_classes=10, small_stem=False, seed=0,
                                     device=torch.device("cpu"))
    assert isinstance(ref.get_submodule("layer1.0.bn2"), nn.BatchNorm2d) and ref.conv1.stride == (2, 2)
    assert ref(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_reference_gn_relu_uses_the_group_rule():
    layer = transfer.native_factory("gn_relu")(24)
    assert isinstance(layer[0], nn.GroupNorm) and layer[0].num_groups == 24 and isinstance(layer[1], nn.ReLU)
    assert isinstance(transfer.native_factory("gn_relu")(64, apply_act=False), nn.GroupNorm)


def test_unknown_model_and_reference_are_clear_errors():
    with pytest.raises(ValueError, match="unknown torchvision classification model 'resnet19'"):
        transfer.build_model("resnet19", transfer.native_factory("bn_relu"), num_classes=10, small_stem=True,
                             seed=0, device=torch.device("cpu"))
    with pytest.raises(ValueError, match="unknown reference 'ln_relu'"):
        transfer.layers_to_train([], ("ln_relu",))


def test_tiny_study_end_to_end_logs_to_mlflow(tiny_folder, tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = tmp_path / "tiny.toml"
    config.write_text(f'device = "cpu"\n[data]\nsource = "{tiny_folder}"\nval_size = 10\n'
                      "[train]\nsteps = 1\nbatch_size = 8\nlr = 0.05\n")
    out = evonorm_cli.main(["transfer", "evonorm_s0", "--model", "mobilenet_v3_small", "--config", str(config),
                            "--seeds", "2", "--references", "bn_relu", "--tracking-uri", uri,
                            "--experiment", "transfer-test"])
    assert out == 0
    printed = capsys.readouterr().out
    assert "mobilenet_v3_small, 1 step of batch 8, 2 seed(s), validation accuracy" in printed
    assert "x·σ(v1·x) / std_group(x)" in printed and " ± " in printed
    mlflow.set_tracking_uri(uri)
    parent = mlflow.search_runs(experiment_names=["transfer-test"], filter_string="tags.`evonorm.kind` = 'transfer'",
                                output_format="list")
    assert len(parent) == 1 and parent[0].data.params["model"] == "mobilenet_v3_small"
    children = mlflow.search_runs(experiment_names=["transfer-test"], output_format="list",
                                  filter_string=f"tags.mlflow.parentRunId = '{parent[0].info.run_id}'")
    assert sorted(c.data.tags["evonorm.layer"] for c in children) == ["bn_relu", "evonorm_s0"]
    for c in children:
        assert 0.0 <= c.data.metrics["acc.mean"] <= 1.0 and "acc.sd" in c.data.metrics
        assert len(mlflow.MlflowClient(uri).get_metric_history(c.info.run_id, "acc")) == 2
    artifacts = {a.path for a in mlflow.MlflowClient(uri).list_artifacts(parent[0].info.run_id)}
    assert {"transfer.txt", "positions.txt"} <= artifacts


def test_test_split_only_when_asked(tiny_folder):
    from evaluation.config import EvalConfig
    from evaluation.evaluate import load_data

    cfg = cfg_for(tiny_folder, split="test", seeds=1, references=("bn_relu",))
    data = load_data(EvalConfig(data=cfg.data), torch.device("cpu"), test=True)
    assert len(data.train) == 60 and len(data.val) == 20
    rows = transfer.run_transfer([], cfg, data=data)
    assert [r.label for r in rows] == ["bn_relu"] and len(rows[0].accuracies) == 1
    assert "test accuracy" in transfer.table(rows, cfg)


def test_a_diverged_seed_is_left_out_of_mean_and_sd_and_the_tables_still_print():
    import math

    from evaluation import sweep

    row = transfer.Row("bn_relu", str(zoo.get("bn_relu")), True, (math.nan, 0.30, 0.34), 10, 0.1, 9,
                       ("seed 0: non-finite loss",))
    assert row.mean == pytest.approx(0.32) and row.sd == pytest.approx(0.0283, abs=1e-4)
    none = transfer.Row("bn_relu", str(zoo.get("bn_relu")), True, (math.nan,), 10, 0.1, 9, ("seed 0: nan",))
    assert math.isnan(none.mean) and math.isnan(none.sd)
    assert "diverged: seed 0: non-finite loss" in transfer.table([row], transfer.TransferConfig(seeds=3))
    assert "(1 diverged)" in sweep.table([sweep.SweepPoint(2, 100, 0.01, (row, none))])
