"""The search-dynamics benchmark and its stronger baseline run end to end at a tiny size (their
figures are in docs/results.md §1; here only that they run and print what they promise)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gp import Genome

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str, stderr: list[str] | None = None) -> str:
    """A script's stdout; its stderr is appended to ``stderr`` when one is given."""
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    if stderr is not None:
        stderr.append(proc.stderr)
    return proc.stdout


def test_search_dynamics_then_the_stronger_baseline(tmp_path):
    plot = tmp_path / "sd.png"
    out = _run("benchmarks/search_dynamics.py", "--targets", "bn_relu", "--seeds", "2", "--budget", "40",
               "--workers", "1", "--score", "inverse", "--plot", str(plot))
    assert plot.is_file()
    curves = json.loads(plot.with_suffix(".json").read_text())["curves"]
    assert sorted(curves) == ["bn_relu|evolution|average", "bn_relu|evolution|pareto", "bn_relu|random|-"]
    assert all(len(c) == 40 for runs in curves.values() for c in runs)
    rows = [line for line in out.splitlines() if line.startswith("bn_relu ")]
    assert len(rows) == 2 and all("/" in r for r in rows)  # a W/T/L per criterion
    parts = next(line for line in out.splitlines() if line.strip().startswith("bn_relu") and "random:" in line)
    assert "/6" in parts and "pareto:" in parts and "average:" in parts
    found = out.split("what was found")[1].splitlines()[1:4]
    assert [line.split()[:2] for line in found] == [["bn_relu", "random"], ["bn_relu", "pareto"],
                                                   ["bn_relu", "average"]]
    for line in found:  # score, seed, then a formula of the space
        score, expression = float(line.split()[2]), line.split("  ")[-1]
        assert 0 < score <= 1 and Genome.from_expression(expression).expression() == expression
    strong = _run("benchmarks/stronger_baseline.py", str(plot.with_suffix(".json")), "--screen", "--workers", "1")
    assert "@40 evo/strong" in strong and len([ln for ln in strong.splitlines() if ln.startswith("bn_relu")]) == 2
    recounted = _run("benchmarks/recount.py", str(plot.with_suffix(".json")), "--margin", "1e-3")
    rows = [ln.split() for ln in recounted.splitlines() if ln.startswith("sd ")]
    assert [r[1:3] for r in rows] == [["bn_relu", "pareto"], ["bn_relu", "average"]]
    assert "of 2 target/criterion pairs" in recounted
    twice = _run("benchmarks/recount.py", str(plot.with_suffix(".json")), str(plot.with_suffix(".json")),
                 "--plot", str(tmp_path / "h2h.png"))
    assert (tmp_path / "h2h.png").stat().st_size > 0 and f"plot: {tmp_path / 'h2h.png'}" in twice
    for row in rows:  # a run given twice pools to twice its counts, per criterion
        w, t, lo = map(int, row[6].split("/"))
        pooled = next(ln for ln in twice.splitlines() if ln.startswith(f"pooled, {row[2]}:"))
        assert f"seeds {2 * w}/{2 * t}/{2 * lo} " in pooled and pooled.count("targets") == 1


def _main(script: str, *args: str, monkeypatch, capsys) -> tuple[int, str, str]:
    """A benchmark script's ``main`` run in this process: (exit status, stdout, stderr)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    module = __import__(script)
    monkeypatch.setattr(sys, "argv", [f"{script}.py", *args])
    try:
        module.main()
        status = 0
    except SystemExit as stop:
        status = stop.code if isinstance(stop.code, int) else 1
        if isinstance(stop.code, str):
            print(stop.code, file=sys.stderr)
    out, err = capsys.readouterr()
    return status, out, err


def test_recount_takes_random_search_from_another_run_on_the_same_targets(tmp_path, monkeypatch, capsys):
    settings = {"targets": {"t": "t1 = neg(x)"}, "budget": 2, "seeds": 2, "first_seed": 0, "probes": 1}
    evolution = {"t|evolution|pareto": [[0.0, 1.0], [0.0, 1.0]]}

    def write(name, random, **changed):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"settings": settings | changed,
                                    "curves": evolution | {"t|random|-": random}}))
        return str(path)

    def recount(*args):
        return _main("recount", *args, monkeypatch=monkeypatch, capsys=capsys)

    higher = write("higher", [[2.0, 2.0], [2.0, 2.0]])
    lower = write("lower", [[0.0, 0.0], [-1.0, -1.0]])
    assert "1.000 / 2.000   0/0/2" in recount(higher)[1]
    swapped = _run("benchmarks/recount.py", higher, "--random-from", lower)  # once as a user runs it
    assert "1.000 / -0.500   2/0/0" in swapped  # evolution's curves kept, random search's taken
    status, _, err = recount(higher, "--random-from", write("other", [[0.0, 0.0], [0.0, 0.0]], seeds=3))
    assert status == 2 and "differ in seeds: 2 against 3" in err
    scored_otherwise = write("scored_otherwise", [[0.0, 0.0], [0.0, 0.0]], outside_fitness="correlation")
    status, _, err = recount(higher, "--random-from", scored_otherwise)
    assert status == 2 and "differ in outside_fitness: None against 'correlation'" in err
    status, _, err = recount(higher, lower, "--random-from", lower)
    assert status == 2 and "one run per curves file" in err


def test_compare_runs_pools_pairs_of_runs_seed_by_seed(tmp_path, monkeypatch, capsys):
    def write(name, evolution, random=((0.0, 0.0), (0.0, 0.0))):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"settings": {}, "curves": {"t|random|-": [list(r) for r in random],
                                                               "t|evolution|average": evolution}}))
        return str(path)

    def compare(*args):
        return _main("compare_runs", *args, monkeypatch=monkeypatch, capsys=capsys)

    before = write("before", [[0.0, 1.0], [0.0, 1.0]])
    after = write("after", [[0.0, 2.0], [0.0, 1.0]])  # one seed better, one the same
    status, out, _ = compare(before, after, before, after)
    assert status == 0 and out.count("t          average") == 2
    assert out.strip().endswith("average, every target and seed: 2/2/0 (two-sided sign test p 0.5)")
    status, _, err = compare(before, after, before)
    assert status == 2 and "runs come in pairs" in err
    status, _, err = compare(before, write("other", [[0.0, 1.0], [0.0, 1.0]], random=((0.0, 5.0), (0.0, 0.0))))
    assert status == 1 and "random searches of 't' differ" in err


def test_a_margin_turns_near_equal_finals_into_ties_broken_by_who_got_there_first():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from search_dynamics import sign_test, sign_test_sooner

    evo = np.array([[0.5, 0.9, 1.0], [0.2, 0.5, 0.9]])
    rnd = np.array([[0.9, 0.9997, 0.9997], [0.1, 0.3, 0.95]])
    assert sign_test(evo[:, -1], rnd[:, -1])[:3] == (1, 0, 1)  # 1.0 beats 0.9997 by default
    assert sign_test(evo[:, -1], rnd[:, -1], 1e-3)[:3] == (0, 1, 1)  # a tie at a 1e-3 margin
    assert sign_test_sooner(evo, rnd)[:3] == (1, 0, 1)
    assert sign_test_sooner(evo, rnd, 1e-3)[:3] == (0, 0, 2)  # random search reached 0.9997 first


def test_rejection_time_times_a_rejected_reference_again_without_the_quality_check(cifar_dir):
    """BN-ReLU rejected at the quality stage (a threshold it cannot reach) is evaluated again with
    that check off, so the time of a full evaluation is still printed, with its curves."""
    out = _run("benchmarks/rejection_time.py", "--preset", "smoke", "--data", str(cifar_dir), "--samples", "0",
               "--set", "rejection.quality_step=4", "--set", "train.steps=6",
               "--set", "rejection.quality_threshold=0.9", "--time-rejected-reference")
    lines = out.splitlines()
    assert lines[1].startswith("data loaded in") and lines[2].startswith("step-time baselines measured in")
    first = next(i for i, line in enumerate(lines) if line.startswith("BN-ReLU full evaluation"))
    assert "(rejected;" in lines[first]
    assert "stage quality" in lines[first + 1] and "< 0.9 at step 4" in lines[first + 1]
    assert lines[first + 2].startswith("evaluating BN-ReLU again")
    assert "(ok;" in lines[first + 3] and "rest_phase" in lines[first + 3]
    curves = [line for line in lines[first + 4:] if line.startswith("BN-ReLU on ")]
    assert len(curves) == 3 and all("at step 4" in c and "at step 6" in c for c in curves)


@pytest.mark.slow
def test_val_batch_times_each_size_in_one_evaluator_with_the_same_accuracies(cifar_dir):
    """Validation batch sizes side by side: a row per size with both ratios, and the same accuracies
    at every size (every layer is per sample in eval mode)."""
    out = _run("benchmarks/val_batch.py", "--preset", "smoke", "--data", str(cifar_dir), "--sizes", "500,7",
               "--rounds", "1")
    rows = [line.split() for line in out.splitlines() if line.startswith("bn_relu ")]
    assert [r[1] for r in rows] == ["500", "7"] and rows[0][4:] == ["1.00x", "1.00x"], out
    assert all(re.fullmatch(r"\d+\.\d\dx", v) for r in rows for v in r[4:]), out
    assert "accuracies differ" not in out


def test_step_time_adds_channels_last_forms_over_the_contiguous_reference():
    """``--channels-last`` adds ``reference@`` and ``NAME@`` columns, each a positive ratio over the
    contiguous reference measured in the same rounds."""
    out = _run("benchmarks/step_time.py", "--preset", "smoke", "--anchors", "resnet50", "--layers", "bn_relu",
               "--rounds", "1", "--steps", "1", "--batch", "4", "--channels-last")
    header = next(line for line in out.splitlines() if line.startswith("anchor"))
    assert header.split()[-3:] == ["bn_relu", "reference@", "bn_relu@"], header
    row = next(line for line in out.splitlines() if line.startswith("resnet50"))
    ratios = [float(v) for v in row.split()[3:]]
    assert len(ratios) == 3 and all(r > 0 for r in ratios), row


@pytest.mark.slow
@pytest.mark.parametrize("shapes", ["per-resolution", "dynamic"])
def test_layer_speed_times_the_evaluators_compiled_path(shapes):
    """One tiny site, compiled as evaluations compile it under each shape policy: a row per layer
    with a ratio for every form and a compile time."""
    out = _run("benchmarks/layer_speed.py", "--shape", "4,8,4,4", "--rounds", "1", "--reps", "1",
               "--layers", "evonorm_s0", "--shapes", shapes)
    row = next(line for line in out.splitlines() if line.startswith("evonorm_s0"))
    assert len(re.findall(r"\d+\.\d+x", row)) == 3 and float(row.split()[-1]) > 0, row


@pytest.mark.slow
def test_before_after_evaluates_each_layer_on_both_trees_in_alternating_order(cifar_dir):
    out = _run("benchmarks/before_after.py", "--preset", "smoke", "--data", str(cifar_dir), "--random", "0",
               "--before", "HEAD", "--threads", "1")
    rows = [line.split() for line in out.splitlines() if line.startswith("  ")]
    assert [(r[0], r[1]) for r in rows] == [("bn_relu", "before"), ("bn_relu", "after"), ("evonorm_b0", "after"),
                                            ("evonorm_b0", "before"), ("evonorm_s0", "before"),
                                            ("evonorm_s0", "after")]
    assert "verdicts differ" not in out  # the same code on both sides gives the same verdicts
    assert re.search(r"after / before, candidates per hour: \d+\.\d\dx", out)
    worktrees = subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True, text=True).stdout
    assert "evonorm-before-" not in worktrees  # the temporary checkout is removed


def test_before_after_names_a_commit_it_cannot_check_out():
    proc = subprocess.run([sys.executable, "benchmarks/before_after.py", "--before", "no-such-commit"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "cannot check out 'no-such-commit'" in proc.stderr


def test_stability_time_runs_both_revisions_tests_on_every_anchor_with_the_same_verdicts():
    out = _run("benchmarks/stability_time.py", "--preset", "smoke", "--before", "HEAD", "--layers", "bn_relu",
               "--rounds", "2", "--threads", "1")
    rows = [line.split() for line in out.splitlines() if line.startswith("bn_relu")]
    assert [r[1] for r in rows] == ["resnet50", "mobilenetv2", "efficientnet_b0"], out
    assert all(re.fullmatch(r"\d+\.\d\dx", r[9]) and r[10] == "passed" for r in rows), out
    assert "VERDICTS DIFFER" not in out and re.search(r"before/after \d+\.\d\dx$", out.strip()), out
    proc = subprocess.run([sys.executable, "benchmarks/stability_time.py", "--before", "no-such-commit"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "revision 'no-such-commit'" in proc.stderr


def test_outside_study_correlation_fitness_is_blind_to_scale_and_shift_only():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from outside_study import CorrelationDistance

    fitness = CorrelationDistance(Genome.parse("t1 = tanh(x)"))
    assert fitness(Genome.parse("t1 = tanh(x)")) == pytest.approx(0.0, abs=1e-12)
    assert fitness(Genome.parse("t1 = tanh(x); t2 = neg(t1)")) == pytest.approx(-2.0, abs=1e-9)  # r = -1
    assert fitness(Genome.parse("t1 = tanh(x); t2 = add(t1, t1)")) == pytest.approx(0.0, abs=1e-9)  # 2 tanh(x)
    other = fitness(Genome.parse("t1 = exp(x)"))
    assert -2.0 < other < -1e-3  # a different function
    assert fitness(Genome.parse("t1 = mean_layer(x)")) < other  # per-sample constant: barely correlated
    with pytest.raises(ValueError, match="constant output"):
        CorrelationDistance(Genome.parse("t1 = mean_batch(x); t2 = mean_layer(t1)"))


def test_outside_study_asks_and_tells_in_batches():
    """``--batch``: both searches run their whole budget with B genomes asked before any is told;
    a batch below 1 is refused by name."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from outside_study import run_one

    from gp import zoo

    settings = {"budget": 30, "population": 8, "tournament": 3, "probes": 1, "batch": 4}
    for algorithm in ("evolution", "random"):
        _, curve = run_one(("b0", str(zoo.get("evonorm_b0")), algorithm, "average", 100, settings))
        assert len(curve) == 30 and np.all(np.diff(curve) >= 0) and curve[-1] < 0.0
    proc = subprocess.run([sys.executable, "benchmarks/outside_study.py", "--batch", "0"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "--batch must be at least 1, got 0" in proc.stderr


def test_outside_study_options_reach_the_searcher_and_nothing_else():
    """``--no-screen``, ``--no-require-x`` and ``--distinct`` change only Evolution's option of that name; random search
    stays the paper's baseline."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from outside_study import make_search

    base = {"population": 8, "tournament": 3}
    plain = make_search("evolution", "average", 1, base)
    assert plain.screen is True and plain.distinct is False and plain.require_x is True  # Evolution()'s defaults
    off = make_search("evolution", "pareto", 1, {**base, "no_screen": True})
    assert off.screen is False and off.distinct is False and off.require_x is True
    assert make_search("evolution", "average", 1, {**base, "no_require_x": True}).require_x is False
    assert make_search("evolution", "average", 1, {**base, "distinct": True}).distinct is True
    assert plain.adaptive_immigration is False
    assert make_search("evolution", "pareto", 1, {**base, "adaptive_immigration": True}).adaptive_immigration
    baseline = make_search("random", "-", 1, {**base, "no_screen": True})
    assert baseline.kind == "random" and baseline.screen is False and baseline.require_x is False
    strong = make_search("random", "-", 1, {**base, "baseline": "strong"})
    assert strong.kind == "random" and strong.screen is True and strong.require_x is True
    assert make_search("evolution", "average", 1, {**base, "baseline": "strong"}).crossover == plain.crossover
    assert plain.immigration == 0.0
    assert make_search("evolution", "average", 1, {**base, "immigration": 0.25}).immigration == 0.25
    assert plain.preselect == 0
    assert make_search("evolution", "average", 1, {**base, "preselect": 8}).preselect == 8
    assert make_search("random", "-", 1, {**base, "immigration": 0.25}).kind == "random"


def test_outside_study_strong_baseline_spends_nothing_on_layers_the_probe_rejects():
    """``--baseline strong``: every layer random search evaluates reads x and passes the static probe, and the
    draws it skipped are counted; the paper's baseline evaluates such layers."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from outside_study import NormalisedError, make_search

    from gp import zoo
    from gp.checks import static_problem

    fitness = NormalisedError(zoo.get("evonorm_s0"))
    counts = {}
    for baseline in ("paper", "strong"):
        search = make_search("random", "-", 3, {"baseline": baseline})
        history = search.run(fitness, 60)
        counts[baseline] = sum(static_problem(Genome.parse(r.genome)) is not None for r in history)
        if baseline == "strong":
            assert sum(search.screened.values()) > 0
    assert counts["strong"] == 0 < counts["paper"]


def test_outside_study_scores_the_target_zero_and_compares_searches_end_to_end(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from outside_study import NormalisedError

    from gp import zoo

    fitness = NormalisedError(zoo.get("evonorm_b0"))
    assert fitness(zoo.get("evonorm_b0")) == 0.0
    three = NormalisedError(zoo.get("evonorm_b0"), probes=3)  # one objective per probe
    assert three(zoo.get("evonorm_b0")) == (0.0, 0.0, 0.0)
    assert three(zoo.get("bn_relu"))[0] == fitness(zoo.get("bn_relu"))  # the first probe is the one probe
    assert fitness(zoo.get("bn_relu")) < 0.0
    assert fitness(Genome.parse("t1 = exp(x); t2 = exp(t1); t3 = exp(t2)")) is None  # overflows: rejected
    with pytest.raises(ValueError, match="no usable output"):
        NormalisedError(Genome.parse("t1 = mul(x, zero)"))  # the zero output
    plot, err = tmp_path / "outside.png", []
    out = _run("benchmarks/outside_study.py", "--budget", "40", "--seeds", "2", "--targets", "b0",
               "--population", "10", "--tournament", "3", "--workers", "1", "--preselect", "4", "--plot", str(plot),
               stderr=err)
    assert "searches 6/6, " in err[0] and "min left" in err[0]  # the last progress line, always shown
    assert "preselect=4" in out.splitlines()[0]
    rows = [line.split() for line in out.splitlines() if line.startswith("b0 ")]
    assert [r[1] for r in rows] == ["pareto", "average"]
    assert all(re.fullmatch(r"\d+/\d+/\d+", r[5]) and sum(map(int, r[5].split("/"))) == 2 for r in rows)
    assert "target/criterion pairs" in out and plot.exists()
    curves = json.loads(plot.with_suffix(".json").read_text())["curves"]
    assert sorted(curves) == ["b0|evolution|average", "b0|evolution|pareto", "b0|random|-"]
    assert all(len(c) == 2 and len(c[0]) == 40 for c in curves.values())
