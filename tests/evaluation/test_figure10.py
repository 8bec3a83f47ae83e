"""scripts/figure10.py on real CIFAR-10 at the smoke preset's size: searches, gather, re-scoring."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from gp import Genome, zoo

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("figure10", ROOT / "scripts" / "figure10.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compare_rescored_pairs_seeds_on_the_fresh_scores_not_the_searchs_own():
    fig = _script()
    a, b = str(zoo.get("evonorm_s0")), str(zoo.get("gn_relu"))
    best = {"evolution": [(0.30, a), (0.30, a)], "random": [(0.20, b), (0.25, "")]}  # seed 1 of random: none passed
    rescored = {"bn_relu": [0.4, 0.4], a: [0.1, 0.2], b: [0.3, 0.3]}
    lines = fig.compare_rescored(best, rescored, "bn_relu", 2)
    assert "bn_relu: 0.400" in lines[0]
    assert lines[1] == "evolution: 0.150 (0.300), 0.150 (0.300) (mean 0.150)"
    assert lines[2].startswith("random: 0.300 (0.200), 0.100 (0.250)")  # no layer: chance
    assert "1 wins, 0 ties, 1 losses" in lines[3]


def test_figure10_runs_gathers_and_rescores_without_training_twice(cifar_dir, tmp_path, test_cache):
    out, plot = tmp_path / "f10", tmp_path / "f10.png"
    cmd = [sys.executable, str(ROOT / "scripts" / "figure10.py"), "--data", str(cifar_dir), "--preset", "smoke",
           "--budget", "3", "--seeds", "1", "--population", "2", "--tournament", "2", "--out", str(out),
           "--plot", str(plot), "--rescore", "1", "--mutation", "indel_edge"]
    env = os.environ | {"EVONORM_CACHE": str(test_cache), "OMP_NUM_THREADS": "1"}
    first = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "re-scored with 1 fresh seeds" in first.stdout and "random (re-scored)" in first.stdout
    for name, mutation in [("evolution-s0", "indel_edge"), ("random-s0", "indel")]:  # random: the preset's
        header = json.loads((out / name / "events.jsonl").read_text().splitlines()[0])
        assert header["config"]["search"]["mutation"] == mutation
    cache = json.loads((out / "rescore.json").read_text())
    assert list(cache[zoo.get("bn_relu").key]) == ["1"]  # the preset's seed is 0: seed 1 is fresh
    summary = json.loads(plot.with_suffix(".json").read_text())
    assert summary["mutation"] == "indel_edge"
    found = [g for finals in summary["best"].values() for _, g in finals if g]
    assert found and all(Genome.parse(g).key in cache for g in found)
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "rescore " not in again.stdout  # every score came from the cache
    assert again.stdout.splitlines()[-1] == first.stdout.splitlines()[-1]
    # the same re-scoring from the summary JSON alone, as for runs whose directories are gone
    script = ROOT / "scripts" / "rescore_bests.py"
    from_json = subprocess.run([sys.executable, str(script), str(plot.with_suffix(".json")), "--data", str(cifar_dir),
                                "--seeds", "1", "--out", str(out)], capture_output=True, text=True, cwd=ROOT, env=env,
                               timeout=900)
    assert from_json.returncode == 0, from_json.stderr[-2000:]
    assert "rescore " not in from_json.stdout
    lines = first.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("re-scored with"))
    end = next(i for i, line in enumerate(lines) if "(re-scored)" in line)
    rescored = lines[start:end + 1]
    assert from_json.stdout.splitlines() == rescored
