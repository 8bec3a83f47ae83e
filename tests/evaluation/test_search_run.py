"""End-to-end searches on real CIFAR-10 subsets: kill and resume, worker processes, Ray, a search
that owns its directory and fails before its first candidate when it cannot run."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from evaluation import config as cfgmod
from evaluation.executors import ProcessExecutor, RayExecutor, WorkerStartError
from evaluation.experiment import CHECKPOINT, EVENTS, DirectoryBusy, Experiment, logged_search_config, make_searcher
from gp.search import events as ev
from gp.search.engine import SerialExecutor


def _search(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "evonorm_cli", "search", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def _evaluated(out):
    """The records the search's log holds, in order."""
    try:
        return [e["record"] for e in ev.read(out / EVENTS) if e["type"] == "evaluated"]
    except FileNotFoundError:
        return []


def test_search_killed_with_sigkill_resumes_without_loss(tiny_config, tmp_path):
    out = tmp_path / "run"
    proc = _search("--config", str(tiny_config), "--out", str(out), "--no-tracking")
    deadline = time.time() + 120
    while time.time() < deadline and len(_evaluated(out)) < 3:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = _evaluated(out)
    assert 3 <= len(done_before) < 8

    resumed = _search("--resume", str(out), "--no-tracking")
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    final = _evaluated(out)
    assert len(final) == 8 and len({r["key"] for r in final}) == 8
    assert final[:len(done_before)] == done_before  # nothing lost, nothing repeated
    assert [r["ordinal"] for r in final] == list(range(8))
    exp = Experiment.resume(out)
    assert exp.searcher.pending == {}
    assert json.loads(json.dumps([r.to_dict() for r in exp.searcher.history])) == final
    exp.close()
    assert "top layer" in stdout or "no layer passed" in stdout


def test_out_directory_is_never_overwritten(tiny_config, tmp_path):
    eval_cfg, search_cfg = cfgmod.load(str(tiny_config)), cfgmod.load_search(str(tiny_config))
    Experiment.create(tmp_path / "run", eval_cfg, search_cfg).close()
    with pytest.raises(FileExistsError, match="--resume"):
        Experiment.create(tmp_path / "run", eval_cfg, search_cfg)


def test_a_second_driver_is_refused_while_the_first_runs(tiny_config, tmp_path):
    eval_cfg, search_cfg = cfgmod.load(str(tiny_config)), cfgmod.load_search(str(tiny_config))
    first = Experiment.create(tmp_path / "run", eval_cfg, search_cfg)
    with pytest.raises(DirectoryBusy, match=f"in use by a running search \\(pid {os.getpid()} on "):
        Experiment.resume(tmp_path / "run")
    first.close()
    Experiment.resume(tmp_path / "run").close()  # free again once the first has let go


def test_the_lock_of_a_dead_driver_is_no_obstacle(tiny_config, tmp_path):
    eval_cfg, search_cfg = cfgmod.load(str(tiny_config)), cfgmod.load_search(str(tiny_config))
    Experiment.create(tmp_path / "run", eval_cfg, search_cfg).close()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                               "from evaluation.experiment import Experiment\n"
                               "Experiment.resume(sys.argv[1]); print('locked', flush=True); time.sleep(600)",
                               str(tmp_path / "run")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(DirectoryBusy, match=f"pid {holder.pid}"):
        Experiment.resume(tmp_path / "run")
    holder.kill()
    holder.wait()
    Experiment.resume(tmp_path / "run").close()


def test_resume_keeps_how_the_search_ran_and_logs_every_override(tiny_config, tmp_path, cifar_dir):
    eval_cfg, search_cfg = cfgmod.load(str(tiny_config)), cfgmod.load_search(str(tiny_config))
    search_cfg = cfgmod.override(search_cfg, executor="process", workers=2)
    Experiment.create(tmp_path / "run", eval_cfg, search_cfg, options={"ray_address": None}).close()
    exp = Experiment.resume(tmp_path / "run", {"search.budget": 12, "eval.data.source": str(cifar_dir)})
    assert (exp.search_cfg.executor, exp.search_cfg.workers, exp.search_cfg.budget) == ("process", 2, 12)
    exp.run(SerialExecutor(lambda genome: (0.5,)))  # a stand-in score: this is about the saved options
    exp.close()
    again = Experiment.resume(tmp_path / "run")
    assert (again.search_cfg.executor, again.search_cfg.workers, again.search_cfg.budget) == ("process", 2, 12)
    assert again.searcher.evaluated == 12
    resumed = [e for e in ev.read(tmp_path / "run" / EVENTS) if e["type"] == "resumed"]
    assert resumed[0]["changes"] == {"search.budget": 12, "eval.data.source": str(cifar_dir)}
    again.close()
    with pytest.raises(cfgmod.ConfigError, match="a resume cannot change search.population_size"):
        Experiment.resume(tmp_path / "run", {"search.population_size": 3})


def test_a_directory_written_before_the_event_log_resumes(tiny_config, tmp_path):
    from gp import zoo
    from gp.search import Evolution
    from gp.search.surrogate import Surrogate

    eval_cfg, search_cfg = cfgmod.load(str(tiny_config)), cfgmod.load_search(str(tiny_config))
    searcher = Evolution(search_cfg.population_size, search_cfg.tournament_size, seed=search_cfg.seed)
    searcher.run(Surrogate(zoo.get("evonorm_s0")), 5)
    searcher.ask()  # one in flight when it was killed
    out = tmp_path / "old"
    out.mkdir()
    (out / CHECKPOINT).write_text(json.dumps({"version": 1, "run_id": None, "eval": cfgmod.to_dict(eval_cfg),
                                              "search": cfgmod.to_dict(search_cfg), "searcher": searcher.state()}))
    exp = Experiment.resume(out)
    assert exp.searcher.state() == searcher.state()
    assert [e["type"] for e in ev.read(out / EVENTS)] == ["search", "snapshot"]
    exp.close()
    from evaluation.layers import logged_history

    assert logged_history(out) == searcher.history  # read through the snapshot, as DIR:RANK and rerank read it


def test_unusable_data_stops_the_search_before_anything_is_written(tmp_path):
    out = tmp_path / "run"
    proc = _search("--preset", "smoke", "--data", str(tmp_path / "nowhere"), "--out", str(out), "--no-tracking")
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "no train/ directory in" in stderr and "Traceback" not in stderr
    assert not (out / EVENTS).exists()


def test_a_worker_that_cannot_start_is_an_error_naming_why(tiny_config, tmp_path):
    eval_cfg = cfgmod.override(cfgmod.load(str(tiny_config)), **{"data.source": str(tmp_path / "nowhere")})
    with pytest.raises(WorkerStartError, match="could not start: DataError: no train/ directory"):
        ProcessExecutor(eval_cfg, 1)


def test_cuda_on_a_host_without_it_is_refused_before_anything_is_written(tiny_config, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this host has CUDA")
    out = tmp_path / "run"
    proc = _search("--config", str(tiny_config), "--device", "cuda", "--executor", "process", "--out", str(out),
                   "--no-tracking")
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "CUDA is not available here" in stderr
    assert not (out / EVENTS).exists()


def test_a_negative_batch_size_is_refused_not_a_hang(tiny_config, tmp_path):
    tiny_config.write_text(tiny_config.read_text().replace("batch_size = 16", "batch_size = -16"))
    proc = _search("--config", str(tiny_config), "--out", str(tmp_path / "run"), "--no-tracking")
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "train.batch_size must be at least 1, got -16" in stderr


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
        exp.close()
    finally:
        executor.close()
        if kind == "ray":
            ray.shutdown()
    evaluated = [r for r in history if r.evaluated]
    assert len(evaluated) == 8 and len({r.key for r in evaluated}) == 8
    assert exp.searcher.pending == {}


def test_a_ray_address_nothing_listens_at_fails_in_seconds(tiny_config):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free: nothing listens there
    with pytest.raises(WorkerStartError, match=f"cannot reach the Ray cluster at '127.0.0.1:{port}'"):
        RayExecutor(cfgmod.load(str(tiny_config)), 1, address=f"127.0.0.1:{port}")


def test_a_directory_killed_while_writing_its_first_event_can_be_created_again(tiny_config, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / EVENTS).write_text('{"type": "search", "ver')  # killed mid-write: no search there yet
    assert not Experiment.exists(out)
    eval_cfg, search_cfg = cfgmod.load(str(tiny_config)), cfgmod.load_search(str(tiny_config))
    Experiment.create(out, eval_cfg, search_cfg).close()
    assert [e["type"] for e in ev.read(out / EVENTS)] == ["search"]


def test_a_search_logged_before_screening_existed_resumes_without_it(tiny_config):
    logged = cfgmod.to_dict(cfgmod.load_search(str(tiny_config)))
    assert logged_search_config(logged).screen  # today's searches log it, and keep it
    old = logged_search_config({k: v for k, v in logged.items() if k != "screen"})
    assert not old.screen and not make_searcher(old).screen


def test_the_crossover_parsimony_adaptive_immigration_and_preselect_keys_reach_the_searcher(tiny_config, tmp_path):
    path = tmp_path / "search.toml"
    path.write_text(tiny_config.read_text().replace("[search]\n", "[search]\ncrossover = 0.25\nparsimony = true\n"
                                                           "adaptive_immigration = true\npreselect = 6\n", 1))
    searcher = make_searcher(cfgmod.load_search(str(path)))
    assert searcher.crossover == 0.25 and searcher.parsimony and searcher.adaptive_immigration
    assert searcher.preselect == 6
    default = make_searcher(cfgmod.load_search(str(tiny_config)))
    assert default.crossover == 0.0 and not default.parsimony and not default.adaptive_immigration
    assert default.preselect == 0
    path.write_text(tiny_config.read_text().replace("[search]\n", "[search]\npreselect = -2\n", 1))
    with pytest.raises(cfgmod.ConfigError, match="search.preselect .*-2"):
        cfgmod.load_search(str(path))
