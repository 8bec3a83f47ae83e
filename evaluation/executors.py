"""Where evaluations run: this process, local worker processes, or Ray actors on a cluster.

Every executor keeps one long-lived evaluator per worker, holding its data on its device, so a
worker loads data and measures BN-ReLU's step time once. Genomes travel as text, results as
:class:`EvalResult` JSON. A worker that dies is replaced and its candidate retried once; a second
death records the candidate as failed with the reason, and the search goes on.

Starting is checked: an executor is ready only when every worker has built its evaluator and
loaded its data, and a worker that cannot (no data, no such device, a bad config) is a
:class:`WorkerStartError` naming the cause, raised before the search writes anything. Worker
processes watch their parent and exit when it is gone (a driver killed with -9 leaves none behind).

No wait is unbounded (the protocol's rule, :mod:`gp.search.executor`): a worker has
``start_timeout`` seconds to become ready (at start, a :class:`WorkerStartError`; a replacement, a
failure at stage ``startup``); with ``rejection.max_seconds`` set, a candidate whose worker has not
answered ``grace`` seconds past that limit (it is stuck where the evaluator cannot check its clock)
has its worker stopped and replaced, and is rejected at stage ``budget`` with that reason. With
the limit off (0, the default) an evaluation may run as long as it runs; a dead worker is still
noticed within a second. Ray actors are sized from the cluster's own CPUs and GPUs
(:func:`actor_resources`).

Here is where a search picks any of the three executors (:func:`make_executor`);
``SerialExecutor`` is re-exported from its home, :mod:`gp.search.executor`, which PyTorch-free
studies use alone.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import queue
import signal
import socket
import threading
import time
from typing import Any

import torch

from evaluation.config import EvalConfig, from_dict, to_dict
from evaluation.evaluate import Evaluator, check_config, resolve_device
from evaluation.result import EvalResult, Status
from gp import Genome
from gp.search.executor import BUDGET, SerialExecutor

__all__ = ["EXECUTORS", "ProcessExecutor", "RayExecutor", "SerialExecutor", "WorkerStartError", "actor_resources",
           "make_executor"]

EXECUTORS = ("serial", "process", "ray")
PARENT_POLL = 1.0  # seconds between a worker's checks that its driver is alive
POLL = 1.0  # seconds between the driver's checks on its workers while it waits for a result
START_TIMEOUT = 600.0  # seconds a worker may take to build its evaluator and load its data
GRACE = 60.0  # seconds past rejection.max_seconds before a worker that has not answered is stopped


class WorkerStartError(RuntimeError):
    """A worker could not start (its evaluator or its data); the message says why."""


def _died(genome: Genome, why: str) -> EvalResult:
    return EvalResult(str(genome.canonical), genome.key, Status.FAILED, reason=why, stage="worker")


def _not_started(genome: Genome, why: str) -> EvalResult:
    return EvalResult(str(genome.canonical), genome.key, Status.FAILED, reason=why, stage="startup")


def _overran(genome: Genome, limit: float, grace: float) -> EvalResult:
    return EvalResult(str(genome.canonical), genome.key, Status.REJECTED, stage=BUDGET,
                      reason=f"no result within {limit + grace:g} s (wall-clock limit {limit:g} s + {grace:g} s "
                             "grace); its worker was stopped")


def _threads(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


def _devices(workers: int, device: str) -> list[str]:
    """One GPU per worker where there are GPUs, else the configured device for all."""
    if device in ("auto", "cuda") and torch.cuda.is_available():
        return [f"cuda:{i % torch.cuda.device_count()}" for i in range(workers)]
    return ["cpu" if device == "auto" else device] * workers


def _watch_parent(parent: int) -> None:
    """Exit when the driver is gone (re-parented): a worker must not outlive it by more than a
    second or two, however the driver died."""
    while True:
        time.sleep(PARENT_POLL)
        if os.getppid() != parent:
            os._exit(1)


def _worker_main(index: int, config: dict, device: str, threads: int, parent: int, tasks, results) -> None:
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle; it stops us
    torch.set_num_threads(threads)  # two workers on two cores must not fight over OpenMP threads
    try:
        evaluator = Evaluator(from_dict(config | {"device": device}))
        evaluator.data  # noqa: B018 - load now: a worker without data must not accept candidates
    except Exception as exc:  # noqa: BLE001 - whatever it is, the driver reports it and stops
        results.put((index, None, f"{type(exc).__name__}: {exc}"))
        return
    results.put((index, None, None))  # ready
    while True:
        text = tasks.get()
        if text is None:
            return
        results.put((index, text, evaluator(Genome.parse(text)).to_json()))


class ProcessExecutor:
    """``workers`` spawned processes on this machine (one per GPU, or N CPU workers)."""

    def __init__(self, config: EvalConfig, workers: int, *, retries: int = 1, start_timeout: float = START_TIMEOUT,
                 grace: float = GRACE) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.capacity = workers
        self.retries = retries
        self.start_timeout, self.grace = start_timeout, grace
        self._limit = config.rejection.max_seconds  # 0: off
        self._ready: set[int] = set()  # workers whose evaluator and data are loaded
        self._started: dict[int, float] = {}  # worker -> when it was started (monotonic)
        self._since: dict[int, float] = {}  # worker -> when its ready worker got its candidate
        self._ctx = mp.get_context("spawn")
        self._config = to_dict(config)
        self._devices = _devices(workers, config.device)
        self._threads = _threads(workers)
        self._results = self._ctx.Queue()
        self._procs: list[Any] = [None] * workers
        self._queues: list[Any] = [None] * workers
        self._task: dict[int, tuple[Genome, int]] = {}  # worker -> (genome, attempts)
        for i in range(workers):
            self._start(i)
        try:
            self._wait_ready()
        except BaseException:
            self.close()
            raise

    def _start(self, i: int) -> None:
        self._ready.discard(i)
        self._since.pop(i, None)
        self._started[i] = time.monotonic()
        self._queues[i] = self._ctx.Queue()
        self._procs[i] = self._ctx.Process(
            target=_worker_main, name=f"evonorm-worker-{i}", daemon=True,
            args=(i, self._config, self._devices[i], self._threads, os.getpid(), self._queues[i], self._results))
        self._procs[i].start()

    def _wait_ready(self) -> None:
        """Block until every worker has its evaluator and data, or raise naming why one has not."""
        deadline = time.monotonic() + self.start_timeout
        while len(self._ready) < self.capacity:
            try:
                index, text, error = self._results.get(timeout=POLL)
            except queue.Empty:
                for i, proc in enumerate(self._procs):
                    if i not in self._ready and not proc.is_alive():
                        raise WorkerStartError(f"worker {i} exited (code {proc.exitcode}) before it was ready") \
                            from None
                if time.monotonic() > deadline:
                    missing = sorted(set(range(self.capacity)) - self._ready)
                    raise WorkerStartError(f"worker(s) {missing} not ready within {self.start_timeout:g} s (building "
                                           "the evaluator and loading the data)") from None
                continue
            if error is not None:
                raise WorkerStartError(f"worker {index} could not start: {error}")
            self._ready.add(index)

    def worker_pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    def submit(self, genome: Genome, attempts: int = 0) -> None:
        idle = next(i for i in range(self.capacity) if i not in self._task)
        self._task[idle] = (genome, attempts)
        if idle in self._ready:
            self._since[idle] = time.monotonic()
        self._queues[idle].put(str(genome))

    def next_result(self) -> tuple[Genome, EvalResult]:
        while True:
            try:
                index, text, payload = self._results.get(timeout=POLL)
            except queue.Empty:
                lost = self._replace_dead_workers() or self._overdue()
                if lost is not None:
                    return lost
                continue
            if text is None:  # a replacement worker reporting in
                if payload is not None and index in self._task:
                    genome, _ = self._task.pop(index)
                    return genome, _not_started(genome, f"worker could not start: {payload}")
                if payload is None:
                    self._ready.add(index)
                    if index in self._task:
                        self._since[index] = time.monotonic()
                continue
            task = self._task.get(index)
            if task is None or str(task[0]) != text:
                continue  # the late answer of a worker stopped for overrunning
            genome, _ = self._task.pop(index)
            self._since.pop(index, None)
            return genome, EvalResult.from_json(payload)

    def _overdue(self) -> tuple[Genome, EvalResult] | None:
        """A candidate whose worker has not started in time, or has run past the time limit and its
        grace: its worker is stopped and replaced, and the candidate ends with the reason."""
        now = time.monotonic()
        for i, (genome, _) in list(self._task.items()):
            if i not in self._ready:
                if now - self._started[i] > self.start_timeout:
                    self._restart(i)
                    return genome, _not_started(genome, f"worker {i} was not ready within {self.start_timeout:g} s")
            elif self._limit > 0 and now - self._since[i] > self._limit + self.grace:
                self._restart(i)
                return genome, _overran(genome, self._limit, self.grace)
        return None

    def _restart(self, i: int) -> None:
        """Stop worker ``i`` (its candidate is given up) and start a fresh one in its place."""
        self._task.pop(i, None)
        proc = self._procs[i]
        proc.kill()
        proc.join(timeout=5)
        self._start(i)

    def _replace_dead_workers(self) -> tuple[Genome, EvalResult] | None:
        for i, proc in enumerate(self._procs):
            if proc.is_alive():
                continue
            code = proc.exitcode
            self._start(i)  # not ready until it reports in: its retried candidate's clock starts then
            if i not in self._task:
                continue
            genome, attempts = self._task.pop(i)
            if attempts < self.retries:
                self._task[i] = (genome, attempts + 1)
                self._queues[i].put(str(genome))
            else:
                return genome, _died(genome, f"worker process died (exit code {code}) {attempts + 1} times")
        return None

    def close(self, timeout: float = 3.0) -> None:
        """Ask every worker to stop; kill those still busy after ``timeout`` seconds in all."""
        if getattr(self, "_closed", False):
            return
        self._closed = True
        for q in self._queues:
            if q is not None:
                q.put(None)
        deadline = time.monotonic() + timeout
        for p in self._procs:
            if p is None:
                continue
            p.join(timeout=max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(timeout=5)


def _reach(address: str, timeout: float = 10.0) -> None:
    """Fail in seconds on a Ray address nothing listens at (``ray.init`` waits for minutes)."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not port.isdigit():
        raise WorkerStartError(f"Ray address {address!r} is not HOST:PORT (or ray://HOST:PORT, or auto)")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout).close()
    except OSError as exc:
        raise WorkerStartError(f"cannot reach the Ray cluster at {address!r} within {timeout:g} s "
                               f"({type(exc).__name__}: {exc}); is 'ray start --head' running there?") from None


def actor_resources(cluster: dict[str, float], workers: int, device: str) -> tuple[float, float]:
    """(CPUs, GPUs) for each of ``workers`` Ray actors, from the cluster's totals
    (``ray.cluster_resources()``). GPUs: none for ``device = "cpu"``; otherwise one each where there
    are as many GPUs as workers, else an equal share placed whole on one GPU (1/2, 1/3... of a GPU,
    as many actors per GPU as it takes to place them all). CPUs: an equal share, whole CPUs where
    there are at least as many as workers. Fractions are rounded down to Ray's 1e-4 so that the
    shares of one GPU (or of the CPUs) never add up to more than there is."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    gpus = int(cluster.get("GPU", 0)) if device != "cpu" else 0
    cpus = float(cluster.get("CPU", 0))
    num_gpus = 0.0
    if gpus:
        per_gpu = math.ceil(workers / gpus)
        num_gpus = 1.0 if per_gpu == 1 else math.floor(1e4 / per_gpu) / 1e4
    if cpus >= workers:
        num_cpus = float(cpus // workers)
    else:  # fewer CPUs than workers (or none reported): share what there is
        num_cpus = math.floor(1e4 * cpus / workers) / 1e4 if cpus > 0 else 1.0
    return num_cpus, num_gpus


class _RayWorker:
    """A persistent Ray actor: one evaluator, data resident on its device."""

    def __init__(self, config: dict, threads: int) -> None:
        torch.set_num_threads(threads)
        # Ray makes the actor's own GPU visible as cuda:0
        device = "cuda" if torch.cuda.is_available() and config["device"] != "cpu" else "cpu"
        self.evaluator = Evaluator(from_dict(config | {"device": device}))
        self.evaluator.data  # noqa: B018 - load now: a worker without data must not accept candidates

    def ready(self) -> bool:
        return True

    def pid(self) -> int:
        return os.getpid()

    def evaluate(self, text: str) -> str:
        return self.evaluator(Genome.parse(text)).to_json()


class RayExecutor:
    """One persistent actor per worker (per GPU where there are GPUs) on a Ray cluster.

    ``address`` is a running cluster's address (``ray start --head`` prints it); None starts a
    local Ray with ``workers`` CPUs. Plain Ray tasks are not used: with ``num_gpus`` they start a
    fresh process per call, which would reload the data for every candidate.
    """

    def __init__(self, config: EvalConfig, workers: int, *, address: str | None = None, retries: int = 1,
                 gpus_per_worker: float | None = None, start_timeout: float = START_TIMEOUT,
                 grace: float = GRACE) -> None:
        import ray

        self._ray = ray
        if not ray.is_initialized():
            if address:
                _reach(address)
            try:
                if address:
                    ray.init(address=address, include_dashboard=False, log_to_driver=False)
                else:
                    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
            except Exception as exc:  # noqa: BLE001 - ConnectionError, RuntimeError, ... : report, do not trace
                where = f"the Ray cluster at {address!r}" if address else "a local Ray"
                raise WorkerStartError(f"cannot start {where}: {type(exc).__name__}: {str(exc)[:300]}") from None
        cluster = ray.cluster_resources()
        num_cpus, num_gpus = actor_resources(cluster, workers, config.device)
        if gpus_per_worker is not None:
            num_gpus = gpus_per_worker
        self.capacity = workers
        self.retries = retries
        self.start_timeout, self.grace = start_timeout, grace
        self._limit = config.rejection.max_seconds  # 0: off
        self._config = to_dict(config)
        self._actor_cls = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_restarts=0)(_RayWorker)
        self._threads = max(1, int(num_cpus))
        self._actors = [self._new_actor() for _ in range(workers)]
        self._refs: dict[Any, tuple[int, Genome, int, float]] = {}  # ref -> (actor, genome, attempts, since)
        try:
            ray.get([a.ready.remote() for a in self._actors], timeout=start_timeout)
        except ray.exceptions.GetTimeoutError:
            self.close()
            raise WorkerStartError(
                f"Ray workers not ready within {start_timeout:g} s: each asks for {num_cpus:g} CPU and {num_gpus:g} "
                f"GPU; the cluster has {cluster.get('CPU', 0):g} CPU and {cluster.get('GPU', 0):g} GPU in all") \
                from None
        except ray.exceptions.RayActorError as exc:
            self.close()
            cause = str(getattr(exc, "cause", None) or exc).strip().splitlines()
            raise WorkerStartError(f"a Ray worker could not start: {cause[-1] if cause else type(exc).__name__}") \
                from None

    def _new_actor(self):
        return self._actor_cls.remote(self._config, self._threads)

    def worker_pids(self) -> list[int]:
        return self._ray.get([a.pid.remote() for a in self._actors], timeout=60)

    def submit(self, genome: Genome, attempts: int = 0) -> None:
        busy = {i for i, *_ in self._refs.values()}
        idle = next(i for i in range(self.capacity) if i not in busy)
        self._send(idle, genome, attempts)

    def _send(self, index: int, genome: Genome, attempts: int) -> None:
        self._refs[self._actors[index].evaluate.remote(str(genome))] = (index, genome, attempts, time.monotonic())

    def next_result(self) -> tuple[Genome, EvalResult]:
        ray = self._ray
        while True:
            ready, _ = ray.wait(list(self._refs), num_returns=1, timeout=POLL)
            if not ready:
                overdue = self._overdue()
                if overdue is not None:
                    return overdue
                continue
            ref = ready[0]
            index, genome, attempts, _ = self._refs.pop(ref)
            try:
                return genome, EvalResult.from_json(ray.get(ref, timeout=60))
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as exc:
                problem = self._replace(index)
                if problem is not None:
                    return genome, _not_started(genome, problem)
                if attempts < self.retries:
                    self._send(index, genome, attempts + 1)
                    continue
                return genome, _died(genome, f"Ray worker died {attempts + 1} times ({type(exc).__name__})")

    def _overdue(self) -> tuple[Genome, EvalResult] | None:
        """A candidate past the time limit and its grace: its actor is killed and replaced."""
        if self._limit <= 0:
            return None
        now = time.monotonic()
        for ref, (index, genome, _, since) in list(self._refs.items()):
            if now - since > self._limit + self.grace:
                del self._refs[ref]
                self._ray.kill(self._actors[index])
                problem = self._replace(index)
                return genome, _not_started(genome, problem) if problem else _overran(genome, self._limit, self.grace)
        return None

    def _replace(self, index: int) -> str | None:
        """A fresh actor in slot ``index``, ready (data loaded) before it gets a candidate, so that a
        candidate's clock never counts a start; the reason when it does not start in time."""
        ray = self._ray
        self._actors[index] = self._new_actor()
        try:
            ray.get(self._actors[index].ready.remote(), timeout=self.start_timeout)
        except ray.exceptions.GetTimeoutError:
            return f"a replacement Ray worker was not ready within {self.start_timeout:g} s"
        except ray.exceptions.RayActorError as exc:
            return f"a replacement Ray worker could not start ({type(exc).__name__})"
        return None

    def close(self) -> None:
        actors, self._actors = self._actors, []
        for a in actors:
            try:
                self._ray.kill(a)
            except Exception:  # noqa: BLE001, S110 - an actor that is already gone
                pass


def make_executor(kind: str, config: EvalConfig, workers: int, *, ray_address: str | None = None, progress=None):
    """An executor whose workers are up, with their data loaded: whatever keeps a search from
    running (config, device, data, worker start) is raised here, before it writes anything."""
    check_config(config)
    if not (kind == "ray" and ray_address):  # a cluster's devices are its own
        resolve_device(config.device)
    if kind == "serial":
        if workers != 1:
            raise ValueError(f"the serial executor runs one evaluation at a time; got --workers {workers}")
        evaluator = Evaluator(config, progress=progress)
        evaluator.data  # noqa: B018 - load now: data errors before the first candidate
        return SerialExecutor(evaluator)
    if kind == "process":
        return ProcessExecutor(config, workers)
    if kind == "ray":
        return RayExecutor(config, workers, address=ray_address)
    raise ValueError(f"unknown executor {kind!r}; valid: {', '.join(EXECUTORS)}")
