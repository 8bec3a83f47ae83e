"""Stopping a search: SIGTERM ends it cleanly (log event, MLflow run KILLED, exit 143) and it
resumes without a lost or repeated candidate; a second driver on its run is refused; a driver
killed with -9 leaves no worker behind."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evaluation import config as cfgmod
from evaluation.experiment import EVENTS, Experiment, Interrupted
from evaluation.tracking import Tracker
from gp.search import events as ev
from gp.search.engine import SerialExecutor


def _search(*args):
    return subprocess.Popen([sys.executable, "-m", "evonorm_cli", "search", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _events(out):
    try:
        return ev.read(out / EVENTS)
    except FileNotFoundError:
        return []


def _wait_for(condition, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def _children(pid: int) -> set[int]:
    """Processes whose parent is ``pid``."""
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.add(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_an_interrupted_search_logs_it_and_marks_its_run_killed(tiny_config, tmp_path):
    eval_cfg, search_cfg = cfgmod.load(str(tiny_config)), cfgmod.load_search(str(tiny_config))
    exp = Experiment.create(tmp_path / "run", eval_cfg, search_cfg)
    calls = []

    def score(genome):  # the signal arrives during the third evaluation
        calls.append(genome)
        if len(calls) == 3:
            raise Interrupted(signal.SIGTERM)
        return (0.5,)

    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "t")
    with pytest.raises(Interrupted):
        exp.run(SerialExecutor(score), tracker=tracker)
    exp.close()
    events = _events(tmp_path / "run")
    assert [e["type"] for e in events if e["type"] in ("evaluated", "interrupted")] == \
        ["evaluated", "evaluated", "interrupted"]
    assert tracker.search_run(exp.run_id).info.status == "KILLED"
    assert [r.ordinal for r in tracker.history(exp.run_id)] == [0, 1]
    resumed = Experiment.resume(tmp_path / "run")
    assert list(resumed.searcher.pending) == [calls[2].key]  # the interrupted one is submitted again
    resumed.close()


@pytest.mark.slow
def test_sigterm_stops_cleanly_and_the_resume_loses_and_repeats_nothing(tiny_config, tmp_path):
    out, uri = tmp_path / "run", f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = _search("--config", str(tiny_config), "--out", str(out), "--tracking-uri", uri, "--experiment", "t",
                   "--budget", "100")
    assert _wait_for(lambda: sum(e["type"] == "evaluated" for e in _events(out)) >= 2)
    run_id = next(e["run_id"] for e in _events(out) if e["type"] == "tracked")
    second = _search("--resume-run", run_id, "--out", str(tmp_path / "other"), "--tracking-uri", uri,
                     "--experiment", "t")
    _, stderr = second.communicate(timeout=120)  # a second driver on the same run is refused
    assert second.returncode == 2 and f"is being written by a running search (pid {proc.pid}" in stderr
    assert not (tmp_path / "other").exists()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "interrupted by SIGTERM; continue it with --resume" in stderr and "Traceback" not in stderr
    events = _events(out)
    assert events[-1]["type"] == "interrupted" and events[-1]["signal"] == signal.SIGTERM
    tracker = Tracker(uri, "t")
    assert tracker.search_run(run_id).info.status == "KILLED"

    done = sum(e["type"] == "evaluated" for e in events)
    resumed = _search("--resume", str(out), "--tracking-uri", uri, "--experiment", "t", "--budget", str(done + 2))
    _, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    records = [e["record"] for e in _events(out) if e["type"] == "evaluated"]
    assert [r["ordinal"] for r in records] == list(range(done + 2))
    assert len({r["key"] for r in records}) == done + 2
    tracked = tracker.history(run_id)
    assert [r.ordinal for r in tracked] == list(range(done + 2))  # one child run per candidate, none twice
    assert tracker.search_run(run_id).info.status == "FINISHED"


def test_workers_do_not_outlive_a_driver_killed_with_sigkill(tiny_config, tmp_path):
    out = tmp_path / "run"
    proc = _search("--config", str(tiny_config), "--out", str(out), "--executor", "process", "--workers", "2",
                   "--no-tracking")
    assert _wait_for(lambda: any(e["type"] == "asked" for e in _events(out)))
    workers = _children(proc.pid)
    assert len(workers) >= 2
    proc.kill()
    proc.wait()
    assert _wait_for(lambda: not any(_alive(p) for p in workers), timeout=15), \
        f"still alive: {[p for p in workers if _alive(p)]}"
