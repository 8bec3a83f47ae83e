"""Where evaluations run: this process, local worker processes, or Ray actors on a cluster.

Every executor keeps one long-lived evaluator per worker, holding its data on its device, so a
worker loads data and measures BN-ReLU's step time once. Genomes travel as text, results as
:class:`EvalResult` JSON. A worker that dies is replaced and its candidate retried once; a second
death records the candidate as failed with the reason, and the search goes on.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
from typing import Any

import torch

from evaluation.config import EvalConfig, from_dict, to_dict
from evaluation.evaluate import Evaluator
from evaluation.result import EvalResult, Status
from gp import Genome
from gp.search import SerialExecutor

EXECUTORS = ("serial", "process", "ray")


def _died(genome: Genome, why: str) -> EvalResult:
    return EvalResult(str(genome.canonical), genome.key, Status.FAILED, reason=why, stage="worker")


def _threads(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


def _devices(workers: int, device: str) -> list[str]:
    """One GPU per worker where there are GPUs, else the configured device for all."""
    if device in ("auto", "cuda") and torch.cuda.is_available():
        return [f"cuda:{i % torch.cuda.device_count()}" for i in range(workers)]
    return ["cpu" if device == "auto" else device] * workers


def _worker_main(index: int, config: dict, device: str, threads: int, tasks, results) -> None:
    torch.set_num_threads(threads)  # two workers on two cores must not fight over OpenMP threads
    cfg = from_dict(config | {"device": device})
    evaluator = Evaluator(cfg)
    while True:
        text = tasks.get()
        if text is None:
            return
        results.put((index, text, evaluator(Genome.parse(text)).to_json()))


class ProcessExecutor:
    """``workers`` spawned processes on this machine (one per GPU, or N CPU workers)."""

    def __init__(self, config: EvalConfig, workers: int, *, retries: int = 1) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.capacity = workers
        self.retries = retries
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

    def _start(self, i: int) -> None:
        self._queues[i] = self._ctx.Queue()
        self._procs[i] = self._ctx.Process(
            target=_worker_main, name=f"evonorm-worker-{i}", daemon=True,
            args=(i, self._config, self._devices[i], self._threads, self._queues[i], self._results))
        self._procs[i].start()

    def worker_pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    def submit(self, genome: Genome, attempts: int = 0) -> None:
        idle = next(i for i in range(self.capacity) if i not in self._task)
        self._task[idle] = (genome, attempts)
        self._queues[idle].put(str(genome))

    def next_result(self) -> tuple[Genome, EvalResult]:
        while True:
            try:
                index, _, payload = self._results.get(timeout=1.0)
            except queue.Empty:
                lost = self._replace_dead_workers()
                if lost is not None:
                    return lost
                continue
            genome, _ = self._task.pop(index)
            return genome, EvalResult.from_json(payload)

    def _replace_dead_workers(self) -> tuple[Genome, EvalResult] | None:
        for i, proc in enumerate(self._procs):
            if proc.is_alive():
                continue
            code = proc.exitcode
            self._start(i)
            if i not in self._task:
                continue
            genome, attempts = self._task.pop(i)
            if attempts < self.retries:
                self._task[i] = (genome, attempts + 1)
                self._queues[i].put(str(genome))
            else:
                return genome, _died(genome, f"worker process died (exit code {code}) {attempts + 1} times")
        return None

    def close(self) -> None:
        for q in self._queues:
            q.put(None)
        for p in self._procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()


class _RayWorker:
    """A persistent Ray actor: one evaluator, data resident on its device."""

    def __init__(self, config: dict, threads: int) -> None:
        torch.set_num_threads(threads)
        # Ray makes the actor's own GPU visible as cuda:0
        device = "cuda" if torch.cuda.is_available() and config["device"] != "cpu" else "cpu"
        self.evaluator = Evaluator(from_dict(config | {"device": device}))

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
                 gpus_per_worker: float | None = None) -> None:
        import ray

        self._ray = ray
        if not ray.is_initialized():
            if address:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        if gpus_per_worker is None:
            gpus = ray.cluster_resources().get("GPU", 0)
            gpus_per_worker = 1.0 if gpus and config.device != "cpu" else 0.0
        self.capacity = workers
        self.retries = retries
        self._config = to_dict(config)
        self._actor_cls = ray.remote(num_cpus=1, num_gpus=gpus_per_worker, max_restarts=0)(_RayWorker)
        self._threads = 1 if not address else _threads(1)
        self._actors = [self._new_actor() for _ in range(workers)]
        self._refs: dict[Any, tuple[int, Genome, int]] = {}  # ref -> (actor index, genome, attempts)

    def _new_actor(self):
        return self._actor_cls.remote(self._config, self._threads)

    def worker_pids(self) -> list[int]:
        return self._ray.get([a.pid.remote() for a in self._actors])

    def submit(self, genome: Genome, attempts: int = 0) -> None:
        busy = {i for i, _, _ in self._refs.values()}
        idle = next(i for i in range(self.capacity) if i not in busy)
        self._refs[self._actors[idle].evaluate.remote(str(genome))] = (idle, genome, attempts)

    def next_result(self) -> tuple[Genome, EvalResult]:
        ray = self._ray
        while True:
            ready, _ = ray.wait(list(self._refs), num_returns=1)
            ref = ready[0]
            index, genome, attempts = self._refs.pop(ref)
            try:
                return genome, EvalResult.from_json(ray.get(ref))
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as exc:
                self._actors[index] = self._new_actor()
                if attempts < self.retries:
                    self._refs[self._actors[index].evaluate.remote(str(genome))] = (index, genome, attempts + 1)
                    continue
                return genome, _died(genome, f"Ray worker died {attempts + 1} times ({type(exc).__name__})")

    def close(self) -> None:
        for a in self._actors:
            self._ray.kill(a)


def make_executor(kind: str, config: EvalConfig, workers: int, *, ray_address: str | None = None, progress=None):
    if kind == "serial":
        if workers != 1:
            raise ValueError(f"the serial executor runs one evaluation at a time; got --workers {workers}")
        return SerialExecutor(Evaluator(config, progress=progress))
    if kind == "process":
        return ProcessExecutor(config, workers)
    if kind == "ray":
        return RayExecutor(config, workers, address=ray_address)
    raise ValueError(f"unknown executor {kind!r}; valid: {', '.join(EXECUTORS)}")
