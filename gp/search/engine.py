"""The asynchronous steady-state loop: keep the executor full; whenever an evaluation finishes,
tell, ask, submit. No generation barrier.

Executors (where evaluations run) follow :mod:`gp.search.executor`; ``Executor``, ``Outcome`` and
``SerialExecutor`` are importable from here as before. The loop drives any searcher that follows
:class:`gp.search.asktell.AskTell` and never imports :mod:`gp.search.searcher` (which uses the loop
for ``Searcher.run``), nor the replay half of the event log.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from gp.genome import Genome
from gp.search.asktell import AskTell
from gp.search.eventlog import AskWatch, EventLog, evaluated
from gp.search.executor import Executor, Outcome, SerialExecutor
from gp.search.record import FAILED, Record

__all__ = ["ENVIRONMENT_STAGES", "Executor", "Outcome", "SearchAborted", "SerialExecutor", "run_search"]


OnRecord = Callable[[Record, Any, AskTell, int], None]

ENVIRONMENT_STAGES = frozenset({"data", "startup"})
"""Stages of failures that say nothing about the layer (its data cannot be read, its worker cannot
start): never told to the searcher, so never cached as a verdict; the genome is submitted again."""
MAX_ENVIRONMENT_FAILURES = 3  # in a row, then the search stops
MAX_SAME_FAILURES = 5  # evaluations in a row that failed with one and the same reason: the search stops


class SearchAborted(RuntimeError):
    """The search cannot go on: its evaluations fail for a reason outside the layers. The genomes
    in flight stay asked (in the log), so a resume submits them again."""


def run_search(searcher: AskTell, executor: Executor, budget: int, *, on_record: OnRecord | None = None,
               save: Callable[[], None] | None = None, log: EventLog | None = None,
               max_environment_failures: int = MAX_ENVIRONMENT_FAILURES,
               max_same_failures: int = MAX_SAME_FAILURES) -> list[Record]:
    """Run until ``budget`` evaluations (duplicates excluded) have finished.

    Genomes the searcher holds as pending (asked before a kill) are submitted first, as many at a
    time as the executor holds. Every ask and every told result is appended to ``log`` before
    anything else sees it; ``save`` is called whenever the searcher's state changed;
    ``on_record(record, result, searcher, in_flight)`` for every new record.

    A result whose stage is in :data:`ENVIRONMENT_STAGES` is not told: it is logged as ``retried``
    and its genome submitted again; ``max_environment_failures`` of them in a row, or
    ``max_same_failures`` failed evaluations in a row with the same reason, raise
    :class:`SearchAborted` naming the reason.
    """
    if budget < 1:
        raise ValueError(f"budget must be at least 1, got {budget}")
    in_flight: dict[str, Genome] = {}
    backlog: deque[Genome] = deque(g for g, _, _ in list(searcher.pending.values()))
    environment: list[str] = []
    streak: list[str] = []

    def submit(genome: Genome) -> None:
        executor.submit(genome)
        in_flight[genome.key] = genome

    while True:
        while backlog and len(in_flight) < executor.capacity:
            submit(backlog.popleft())
        while not backlog and len(in_flight) < executor.capacity and searcher.evaluated + len(in_flight) < budget:
            watch = AskWatch(searcher)
            genome = searcher.ask()
            if log is not None:
                log.append(watch.event(genome))
            submit(genome)
            if save:
                save()
        if not in_flight:
            break
        genome, result = executor.next_result()
        in_flight.pop(genome.key)
        if getattr(result, "stage", None) in ENVIRONMENT_STAGES:
            environment.append(result.reason or result.stage)
            if log is not None:
                log.append({"type": "retried", "key": genome.key, "stage": result.stage, "reason": result.reason})
            if len(environment) >= max_environment_failures:
                raise SearchAborted(f"{len(environment)} evaluations in a row failed for a reason outside the "
                                    f"layers ({result.stage}): {result.reason}")
            backlog.append(genome)
            continue
        environment.clear()
        record = searcher.tell(genome, result.objectives, status=_status(result), reason=result.reason,
                               stage=result.stage)
        if log is not None:
            log.append(evaluated(record, result))
        if save:
            save()
        if on_record is not None:
            on_record(record, result, searcher, len(in_flight))
        streak = (streak + [record.reason])[-max_same_failures:] if record.status == FAILED and record.reason else []
        if len(streak) == max_same_failures and len(set(streak)) == 1:
            raise SearchAborted(f"the last {max_same_failures} evaluations all failed with the same reason, which "
                                f"looks like the environment rather than the layers: {record.reason}")
    return searcher.history


def _status(result: Any) -> str | None:
    status = getattr(result, "status", None)
    return None if status is None else str(getattr(status, "value", status))
