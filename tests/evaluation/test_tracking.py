"""MLflow tracking of real (tiny) searches: child runs, a real mlflow server, reports, resume."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import mlflow
import pytest

from evaluation import config as cfgmod
from evaluation.evaluate import Evaluator
from evaluation.experiment import Experiment
from evaluation.tracking import Tracker, TrackingError
from gp import Genome
from gp.search import SerialExecutor

TAGS = ["evonorm.genome", "evonorm.key", "evonorm.formula", "evonorm.status", "evonorm.reason", "evonorm.stage",
        "evonorm.parent", "evonorm.ordinal"]


def _tracked_search(config_path, out, uri, budget=6):
    eval_cfg, search_cfg = cfgmod.load(str(config_path)), cfgmod.load_search(str(config_path))
    exp = Experiment.create(out, eval_cfg, search_cfg).with_budget(budget)
    tracker = Tracker(uri, "tests")
    exp.run(SerialExecutor(Evaluator(eval_cfg)), tracker=tracker)
    return exp, tracker


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, tiny_text):
    tmp = tmp_path_factory.mktemp("tracked")
    path = tmp / "tiny.toml"
    path.write_text(tiny_text)
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    exp, tracker = _tracked_search(path, tmp / "run", uri)
    return exp, tracker, uri, path


def test_one_child_run_per_candidate_with_tags_and_metrics(tracked):
    exp, tracker, uri, _ = tracked
    mlflow.set_tracking_uri(uri)
    children = mlflow.search_runs(experiment_names=["tests"],
                                  filter_string=f"tags.mlflow.parentRunId = '{exp.run_id}'")
    assert len(children) == len(exp.searcher.history) >= 6
    for tag in TAGS:
        assert f"tags.{tag}" in children.columns
    ordinals = sorted(int(o) for o in children["tags.evonorm.ordinal"])
    assert ordinals == list(range(len(exp.searcher.history)))
    ok = children[children["tags.evonorm.status"] == "ok"]
    assert len(ok) == sum(r.status == "ok" for r in exp.searcher.history)
    assert ok["metrics.acc.resnet50"].notna().all() and ok["metrics.acc.mean"].notna().all()
    parent = mlflow.get_run(exp.run_id)
    assert parent.data.params["search.population_size"] == "4" and "config.json" in parent.data.params
    assert parent.data.metrics["evaluated"] == 6 and parent.info.status == "FINISHED"


def test_history_rebuilt_from_tracking_reproduces_the_run(tracked, tmp_path):
    exp, tracker, _, _ = tracked
    assert tracker.history(exp.run_id) == exp.searcher.history
    resumed = Experiment.from_tracking(tracker, exp.run_id, tmp_path / "again")
    assert resumed.searcher.history == exp.searcher.history
    assert resumed.eval_cfg == exp.eval_cfg and resumed.search_cfg == exp.search_cfg
    assert list(resumed.searcher.window) == list(exp.searcher.window)


def test_report_writes_pngs_and_html(tracked, tmp_path):
    exp, tracker, uri, _ = tracked
    proc = subprocess.run([sys.executable, "-m", "evonorm_cli", "report", "latest", "--tracking-uri", uri,
                           "--experiment", "tests", "--out", str(tmp_path / "rep")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "rep" / "report.html").read_text()
    for png in ["progress.png", "pareto.png", "rejections.png", "lineage.png"]:
        assert (tmp_path / "rep" / png).stat().st_size > 1000
        assert f'alt="{png}"' in page  # embedded (tests/analysis/test_report.py checks the data URIs)
    drawings = sorted(p.name for p in (tmp_path / "rep").glob("layer-*.png"))
    assert all(f'alt="{d}"' in page for d in drawings)
    artifacts = [a.path for a in tracker.client.list_artifacts(exp.run_id)]
    assert "report.html" in artifacts


def test_unreachable_tracking_server_fails_before_training(tiny_config, tmp_path):
    start = time.time()
    proc = subprocess.run([sys.executable, "-m", "evonorm_cli", "search", "--config", str(tiny_config),
                           "--tracking-uri", "http://127.0.0.1:9", "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "cannot reach the tracking store 'http://127.0.0.1:9'" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()  # nothing started
    assert time.time() - start < 60


def test_experiment_that_cannot_be_used_is_a_clear_error(tmp_path):
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    tracker = Tracker(uri, "gone")
    tracker.client.delete_experiment(tracker.experiment_id)
    with pytest.raises(TrackingError, match="experiment 'gone' is deleted"):
        Tracker(uri, "gone")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_search_logs_to_an_mlflow_server_over_http(tiny_config, tmp_path):
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                               "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
                               "--default-artifact-root", str(tmp_path / "artifacts"), "--workers", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(f"{uri}/health", timeout=2)
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    pytest.fail("mlflow server did not start")
                time.sleep(0.5)
        exp, _ = _tracked_search(tiny_config, tmp_path / "run", uri, budget=3)
        body = json.dumps({"experiment_ids": [Tracker(uri, "tests").experiment_id],
                           "filter": f"tags.mlflow.parentRunId = '{exp.run_id}'", "max_results": 100}).encode()
        request = urllib.request.Request(f"{uri}/api/2.0/mlflow/runs/search", data=body,
                                         headers={"Content-Type": "application/json"})
        runs = json.loads(urllib.request.urlopen(request, timeout=10).read())["runs"]
        assert len(runs) == len(exp.searcher.history)
        keys = {t["value"] for r in runs for t in r["data"]["tags"] if t["key"] == "evonorm.key"}
        assert keys == {r.key for r in exp.searcher.history}
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_rerank_trains_top_layers_beside_bn_relu_and_logs_a_table(tracked):
    from evaluation.rerank import rerank, table

    exp, tracker, _, config_path = tracked
    cfg = cfgmod.load(str(config_path))
    passed = [r for r in exp.searcher.history if r.objectives is not None and r.evaluated]
    with pytest.raises(ValueError, match="'evonorm_z9' is not a zoo layer"):  # before any training
        rerank(tracker, exp.run_id, cfg, top=2, seeds=2, references=("bn_relu", "evonorm_z9"))
    rows, run_id = rerank(tracker, exp.run_id, cfg, top=2, seeds=2, references=("bn_relu", "evonorm_s0"))
    names = [r.name for r in rows]
    assert names.count("bn_relu") == 1 and names.count("evonorm_s0") == 1 and len(rows) == 2 + min(2, len(passed))
    assert all(len(r.scores["resnet50"]) == 2 for r in rows)
    assert "bn_relu" in table(rows, ["resnet50"])
    run = tracker.client.get_run(run_id)
    assert run.data.tags["mlflow.parentRunId"] == exp.run_id and run.data.params["split"] == "val"
    assert run.data.tags["evonorm.kind"] == "rerank"
    assert "rerank.txt" in [a.path for a in tracker.client.list_artifacts(run_id)]
    # a re-ranking is a child of the search, not a candidate: readers of the search are not misled
    assert tracker.history(exp.run_id) == exp.searcher.history
    # layers beside the search's may be any spec; --top 0 trains only them
    relu = Genome.from_expression("max(x, zero)")
    only, _ = rerank(tracker, exp.run_id, cfg, top=0, seeds=1, references=("max(x, zero)", f"{exp.run_id}:1"))
    assert [r.genome for r in only if r.name == f"layer-{relu.key[:8]}"] == [str(relu)]
    assert len(only) == 2 and f"{exp.run_id[:8]}-1" in [r.name for r in only]


def test_rerank_table_shows_layers_that_did_not_train_on_every_seed():
    """A layer that fails on one seed (NaN there) is shown with the seeds it trained on, not a
    crash after hours of training (statistics.pstdev raises on NaN)."""
    from evaluation.rerank import Row, table

    nan = float("nan")
    rows = [Row("ok", "t1 = max(x, zero)", {"plain": [0.30, 0.31, 0.29]}),
            Row("some", "t1 = tanh(x)", {"plain": [0.09, 0.10, nan]}),
            Row("none", "t1 = exp(x)", {"plain": [nan, nan, nan]})]
    lines = table(rows, ["plain"]).splitlines()
    assert "0.300±0.008" in lines[1] and "/3" not in lines[1]
    assert "0.095±0.005 2/3" in lines[2] and lines[2].split()[-2] == "nan"  # the mean counts the failure
    assert "0/3" in lines[3]


def test_rerank_and_dir_rank_read_a_search_directory_without_its_tracking(tracked, tmp_path):
    """The event log is the search: a directory re-ranks the same layers as the tracked run, and
    DIR:RANK names the same layer as RUN_ID:RANK."""
    from evaluation import layers
    from evaluation.rerank import rerank

    exp, tracker, _, config_path = tracked
    out = exp.out
    assert layers.logged_history(out) == exp.searcher.history == tracker.history(exp.run_id)
    cfg = cfgmod.load(str(config_path))
    other = Tracker(f"sqlite:///{tmp_path / 'elsewhere.db'}", "tests")  # a store that never saw the search
    rows, run_id = rerank(other, str(out), cfg, top=1, seeds=1)
    tracked_rows, tracked_id = rerank(tracker, exp.run_id, cfg, top=1, seeds=1)
    assert [(r.name, r.genome, r.scores) for r in rows] == [(r.name, r.genome, r.scores) for r in tracked_rows]
    run = other.client.get_run(run_id)
    assert run.data.tags["evonorm.source"] == str(out.resolve()) and "mlflow.parentRunId" not in run.data.tags
    tracked_run = tracker.client.get_run(tracked_id)
    assert tracked_run.data.tags["evonorm.source"] == tracked_run.data.tags["mlflow.parentRunId"] == exp.run_id
    passed = len(layers.ranked(exp.searcher.history))
    assert passed >= 1
    for rank in range(1, passed + 1):
        assert layers.resolve(f"{out}:{rank}", tracking_uri=tracker.uri, experiment="tests")[1] == \
            layers.resolve(f"{exp.run_id}:{rank}", tracking_uri=tracker.uri, experiment="tests")[1]
    with pytest.raises(ValueError, match=rf"rank must be in 1..{passed}, the layers of the search in"):
        layers.resolve(f"{out}:{passed + 1}")
    with pytest.raises(FileNotFoundError, match="not a search directory"):
        layers.logged_history(tmp_path)
    with pytest.raises(FileNotFoundError, match=f"{tmp_path} is not a search directory"):  # not a layer expression
        layers.resolve(f"{tmp_path}:1")
    with pytest.raises(FileNotFoundError, match="not a search directory"):
        rerank(other, str(tmp_path), cfg, top=1, seeds=1)


def test_a_search_can_be_resumed_from_tracking_after_a_rerank(tracked, tmp_path):
    from evaluation.rerank import rerank

    exp, tracker, _, config_path = tracked
    rerank(tracker, exp.run_id, cfgmod.load(str(config_path)), top=1, seeds=1)
    resumed = Experiment.from_tracking(tracker, exp.run_id, tmp_path / "again")
    assert resumed.searcher.history == exp.searcher.history
    resumed.close()


def test_the_start_up_probe_leaves_mlflow_retries_alone(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    Tracker(f"sqlite:///{tmp_path / 'm.db'}", "probe")
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ


def test_candidates_missing_from_mlflow_are_logged_on_resume_once(tiny_config, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    exp, tracker = _tracked_search(tiny_config, tmp_path / "run", uri, budget=5)
    exp.close()
    lost = [r for r in tracker._children(exp.run_id, "candidate") if r.data.tags["evonorm.ordinal"] in ("1", "3")]
    for run in lost:  # as if the driver died between its log and MLflow, or MLflow was down
        tracker.client.delete_run(run.info.run_id)
    assert [r.ordinal for r in tracker.history(exp.run_id)] == [0, 2, 4]
    resumed = Experiment.resume(tmp_path / "run", {"search.budget": 6})
    resumed.run(SerialExecutor(Evaluator(resumed.eval_cfg)), tracker=Tracker(uri, "tests"))
    resumed.close()
    assert tracker.history(exp.run_id) == resumed.searcher.history  # caught up, in order, nothing twice
    assert len(resumed.searcher.history) == 6


def test_learning_curves_and_parameter_counts_are_logged(tracked):
    exp, tracker, _, _ = tracked
    ok = next(r for r in tracker._children(exp.run_id, "candidate") if r.data.tags["evonorm.status"] == "ok")
    curve = tracker.client.get_metric_history(ok.info.run_id, "curve.resnet50")
    assert [m.step for m in curve] == [4] and ok.data.metrics["params.resnet50"] > 0
