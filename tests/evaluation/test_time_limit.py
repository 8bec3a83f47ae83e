"""The per-candidate wall-clock limit (``rejection.max_seconds``) and the executors' bounded waits."""

import dataclasses
import os
import time

import pytest

from evaluation import config as cfgmod
from evaluation import evaluate as evaluate_mod
from evaluation.config import ConfigError
from evaluation.executors import ProcessExecutor, WorkerStartError, actor_resources
from evaluation.result import Status
from gp import zoo


def test_the_limit_is_off_by_default_and_validated():
    assert cfgmod.RejectionConfig().max_seconds == 0
    cfg = cfgmod.override(cfgmod.EvalConfig(), **{"rejection.max_seconds": 90})
    assert cfg.rejection.max_seconds == 90
    with pytest.raises(ConfigError, match=r"rejection.max_seconds must be 0 \(off\) or a positive number of seconds, "
                                          "got -1"):
        cfgmod.override(cfg, **{"rejection.max_seconds": -1})
    with pytest.raises(ConfigError, match="rejection.max_seconds must be a number"):
        cfgmod.override(cfg, **{"rejection.max_seconds": "1m"})


class _Ticks:
    """A clock that advances one second each time it is read."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def _with(cfg, **changes):
    return cfgmod.override(cfg, **changes)


@pytest.fixture
def tiny(tiny_config):
    return cfgmod.load(str(tiny_config))


def test_a_candidate_over_the_limit_is_a_budget_rejection_naming_where(tiny, monkeypatch):
    class Ticking(evaluate_mod.WallClock):
        def __init__(self, seconds):
            super().__init__(seconds, clock=_Ticks())

    monkeypatch.setattr(evaluate_mod, "WallClock", Ticking)
    # one tick per read: 1 s after the static probe; the baseline's two reads do not count; 3 s
    # after stability, then one more per step
    result = evaluate_mod.Evaluator(_with(tiny, **{"rejection.max_seconds": 4.5}))(zoo.get("bn_relu"))
    assert (result.status, result.stage, result.anchor) == (Status.REJECTED, "budget", "resnet50")
    assert result.reason.startswith("wall-clock limit of 4.5 s reached (5.0 s, at step 2 on resnet50)")
    assert result.step == 2 and result.objectives is None


def test_a_generous_limit_changes_nothing(tiny):
    ev = evaluate_mod.Evaluator(tiny)
    free = ev(zoo.get("bn_relu"))
    bounded = evaluate_mod.Evaluator(_with(tiny, **{"rejection.max_seconds": 3600}), data=ev.data)(zoo.get("bn_relu"))
    assert free.status == bounded.status == Status.OK
    assert free.accuracies == bounded.accuracies


def test_a_process_worker_stuck_past_the_limit_is_stopped_and_the_candidate_rejected(tiny):
    # a stability test of a million ascent steps: the evaluator cannot check its clock inside it
    stuck = _with(tiny, **{"rejection.max_seconds": 0.5, "rejection.stability_steps": 1_000_000})
    executor = ProcessExecutor(stuck, 1, grace=1.0)
    try:
        (old,) = executor.worker_pids()
        started = time.monotonic()
        executor.submit(zoo.get("bn_relu"))
        genome, result = executor.next_result()
        waited = time.monotonic() - started
        assert genome == zoo.get("bn_relu")
        assert (result.status, result.stage) == (Status.REJECTED, "budget")
        assert "no result within 1.5 s (wall-clock limit 0.5 s + 1 s grace); its worker was stopped" in result.reason
        assert 1.5 <= waited < 10
        (new,) = executor.worker_pids()
        assert new != old
        with pytest.raises(ProcessLookupError):
            os.kill(old, 0)
    finally:
        executor.close()


def test_a_worker_that_does_not_start_in_time_is_an_error_not_a_hang(tiny):
    started = time.monotonic()
    with pytest.raises(WorkerStartError, match=r"worker\(s\) \[0\] not ready within 0.01 s"):
        ProcessExecutor(tiny, 1, start_timeout=0.01)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(("cluster", "workers", "device", "expected"), [
    ({"CPU": 2.0}, 2, "auto", (1.0, 0.0)),  # the local Ray a search starts: one CPU each
    ({"CPU": 16.0, "GPU": 4.0}, 4, "auto", (4.0, 1.0)),  # one GPU each
    ({"CPU": 16.0, "GPU": 1.0}, 2, "auto", (8.0, 0.5)),  # two actors share the GPU
    ({"CPU": 16.0, "GPU": 2.0}, 3, "cuda", (5.0, 0.5)),  # 2 + 1 on two GPUs, never 0.67 each
    ({"CPU": 8.0, "GPU": 1.0}, 3, "auto", (2.0, 0.3333)),
    ({"CPU": 16.0, "GPU": 2.0}, 4, "cpu", (4.0, 0.0)),  # device cpu: no GPU asked for
    ({"CPU": 2.0}, 4, "auto", (0.5, 0.0)),  # fewer CPUs than workers: shared
])
def test_ray_actors_are_sized_from_the_cluster(cluster, workers, device, expected):
    cpus, gpus = actor_resources(cluster, workers, device)
    assert (cpus, gpus) == expected
    assert cpus * workers <= cluster["CPU"]
    if gpus:  # every actor fits: whole shares on each GPU
        assert int(1 / gpus + 1e-9) * int(cluster["GPU"]) >= workers


def test_the_limit_is_saved_with_the_config_and_read_back(tiny):
    cfg = dataclasses.replace(tiny, rejection=dataclasses.replace(tiny.rejection, max_seconds=2.0))
    assert cfgmod.from_dict(cfgmod.to_dict(cfg)).rejection.max_seconds == 2.0
    saved_before = cfgmod.to_dict(tiny)
    del saved_before["rejection"]["max_seconds"]  # a search saved before the key existed
    assert cfgmod.from_dict(saved_before).rejection.max_seconds == 0


@pytest.mark.slow
def test_a_ray_worker_stuck_past_the_limit_is_replaced_and_the_candidate_rejected(tiny):
    import ray

    from evaluation.executors import RayExecutor

    stuck = _with(tiny, **{"rejection.max_seconds": 0.5, "rejection.stability_steps": 1_000_000})
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    executor = RayExecutor(stuck, 1, grace=1.0)
    try:
        (old,) = executor.worker_pids()
        executor.submit(zoo.get("bn_relu"))
        genome, result = executor.next_result()
        assert (result.status, result.stage) == (Status.REJECTED, "budget")
        assert "no result within 1.5 s" in result.reason
        assert executor.worker_pids()[0] != old  # a fresh actor, ready, in its place
    finally:
        executor.close()
        ray.shutdown()
