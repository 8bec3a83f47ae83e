"""The asynchronous steady-state loop: keep the executor full; whenever an evaluation finishes,
tell, ask, submit. No generation barrier.

An executor runs evaluations somewhere (this process, worker processes, a Ray cluster) and hands
results back in completion order. A result is anything with ``objectives`` (K scores or None),
``status``, ``reason`` and ``stage`` — :class:`evaluation.EvalResult`, or :class:`Outcome` for
studies that bring a plain scoring function.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from gp.genome import Genome
from gp.search.record import Record
from gp.search.searcher import Searcher


class Executor(Protocol):
    capacity: int  # evaluations it runs at once

    def submit(self, genome: Genome) -> None: ...

    def next_result(self) -> tuple[Genome, Any]: ...  # blocks until one evaluation finishes

    def close(self) -> None: ...


@dataclass(frozen=True)
class Outcome:
    objectives: tuple[float, ...] | None
    status: str | None = None
    reason: str | None = None
    stage: str | None = None


class SerialExecutor:
    """Evaluates in this process, one at a time, in submission order."""

    capacity = 1

    def __init__(self, evaluate: Callable[[Genome], Any]) -> None:
        self.evaluate = evaluate
        self._queue: deque[Genome] = deque()

    def submit(self, genome: Genome) -> None:
        self._queue.append(genome)

    def next_result(self) -> tuple[Genome, Any]:
        genome = self._queue.popleft()
        result = self.evaluate(genome)
        if result is None or isinstance(result, Sequence):
            result = Outcome(tuple(result) if result is not None else None)
        return genome, result

    def close(self) -> None:
        self._queue.clear()


OnRecord = Callable[[Record, Any, "Searcher", int], None]


def run_search(searcher: Searcher, executor: Executor, budget: int, *, on_record: OnRecord | None = None,
               save: Callable[[], None] | None = None) -> list[Record]:
    """Run until ``budget`` evaluations (duplicates excluded) have finished.

    Genomes the searcher holds as pending (asked before a kill) are submitted first. ``save`` is
    called whenever the searcher's state changed (checkpointing); ``on_record(record, result,
    searcher, in_flight)`` for every new record, duplicates included (their result is None).
    """
    if budget < 1:
        raise ValueError(f"budget must be at least 1, got {budget}")
    in_flight: dict[str, Genome] = {}
    for genome, _, _ in list(searcher.pending.values()):
        executor.submit(genome)
        in_flight[genome.key] = genome

    def emit(since: int, result: Any) -> None:
        if on_record is None:
            return
        for record in searcher.history[since:]:
            on_record(record, result if record.evaluated else None, searcher, len(in_flight))

    while True:
        while len(in_flight) < executor.capacity and searcher.evaluated + len(in_flight) < budget:
            before = len(searcher.history)
            genome = searcher.ask()
            executor.submit(genome)
            in_flight[genome.key] = genome
            if save:
                save()
            emit(before, None)
        if not in_flight:
            break
        genome, result = executor.next_result()
        in_flight.pop(genome.key)
        before = len(searcher.history)
        searcher.tell(genome, result.objectives, status=_status(result), reason=result.reason, stage=result.stage)
        if save:
            save()
        emit(before, result)
    return searcher.history


def _status(result: Any) -> str | None:
    status = getattr(result, "status", None)
    return None if status is None else str(getattr(status, "value", status))
