"""End-to-end searches on real CIFAR-10 subsets: kill and resume, worker processes, Ray."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from evaluation import config as cfgmod
from evaluation.executors import ProcessExecutor, RayExecutor
from evaluation.experiment import CHECKPOINT, Experiment


def _search(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "evonorm_cli", "search", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def _checkpoint(out):
    try:
        return json.loads((out / CHECKPOINT).read_text())["searcher"]
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def test_search_killed_with_sigkill_resumes_without_loss(tiny_config, tmp_path):
    out = tmp_path / "run"
    proc = _search("--config", str(tiny_config), "--out", str(out))
    deadline = time.time() + 120
    while time.time() < deadline:
        state = _checkpoint(out)
        if state and sum(r["status"] != "duplicate" for r in state["history"]) >= 3:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _checkpoint(out)
    done_before = [r for r in before["history"]]
    assert 3 <= sum(r["status"] != "duplicate" for r in done_before) < 8

    resumed = _search("--resume", str(out))
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    final = _checkpoint(out)
    evaluated = [r for r in final["history"] if r["status"] != "duplicate"]
    assert len(evaluated) == 8 and len({r["key"] for r in evaluated}) == 8
    assert final["history"][:len(done_before)] == done_before  # nothing lost, nothing repeated
    assert final["pending"] == []
    assert "top layer" in stdout or "no layer passed" in stdout


def test_out_directory_is_never_overwritten(tiny_config, tmp_path):
    eval_cfg, search_cfg = cfgmod.load(str(tiny_config)), cfgmod.load_search(str(tiny_config))
    Experiment.create(tmp_path / "run", eval_cfg, search_cfg)
    with pytest.raises(FileExistsError, match="--resume"):
        Experiment.create(tmp_path / "run", eval_cfg, search_cfg)


def _kill_one_worker_soon(executor, delay):
    def kill():
        time.sleep(delay)
        os.kill(executor.worker_pids()[0], signal.SIGKILL)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("kind", ["process", "ray"])
def test_parallel_search_survives_a_killed_worker(kind, tiny_config, tmp_path):
    eval_cfg, search_cfg = cfgmod.load(str(tiny_config)), cfgmod.load_search(str(tiny_config))
    exp = Experiment.create(tmp_path / kind, eval_cfg, search_cfg)
    if kind == "ray":
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        executor = RayExecutor(eval_cfg, 2)
    else:
        executor = ProcessExecutor(eval_cfg, 2)
    try:
        pids = executor.worker_pids()
        assert len(set(pids)) == 2 and os.getpid() not in pids
        killer = _kill_one_worker_soon(executor, 3.0)
        history = exp.run(executor)
        killer.join()
    finally:
        executor.close()
        if kind == "ray":
            ray.shutdown()
    evaluated = [r for r in history if r.evaluated]
    assert len(evaluated) == 8 and len({r.key for r in evaluated}) == 8
    assert exp.searcher.pending == {}
