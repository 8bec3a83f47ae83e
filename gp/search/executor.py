"""The executor protocol: where evaluations run, as the search loop sees it.

An executor runs evaluations somewhere and hands results back in completion order. A result is
anything with ``objectives`` (K scores or None), ``status``, ``reason`` and ``stage`` —
:class:`evaluation.result.EvalResult`, or :class:`Outcome` for studies that bring a plain scoring
function.

Three executors implement it: :class:`SerialExecutor` (here: it needs nothing but a callable) and
the process and Ray executors of :mod:`evaluation.executors`, which hold PyTorch evaluators in
worker processes; that module is where a search picks any of the three
(:func:`evaluation.executors.make_executor`). Their shared rules:

- ``next_result`` never waits without bound on a worker: every wait has a timeout, and a worker
  that is gone, cannot start or overruns the per-candidate time limit ends in a result whose
  ``reason`` says so (never a hang, never an exception out of the loop);
- a candidate over the wall-clock limit is a rejection at stage ``budget`` (:data:`BUDGET`), like a
  step-time or out-of-memory rejection: transient, so the searcher may ask the layer again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from gp.genome import Genome

BUDGET = "budget"
"""The stage of a rejection for a resource limit: step time, memory, wall clock."""


class Executor(Protocol):
    capacity: int  # evaluations it runs at once

    def submit(self, genome: Genome) -> None: ...

    def next_result(self) -> tuple[Genome, Any]: ...  # the next evaluation to finish (bounded waits)

    def close(self) -> None: ...


@dataclass(frozen=True)
class Outcome:
    objectives: Sequence[float] | float | None  # as Searcher.tell takes them
    status: str | None = None
    reason: str | None = None
    stage: str | None = None


class SerialExecutor:
    """Evaluates in this process, one at a time, in submission order. A time limit, if any, is
    the evaluator's own (:class:`evaluation.evaluate.Evaluator` checks ``train.max_seconds``)."""

    capacity = 1

    def __init__(self, evaluate: Callable[[Genome], Any]) -> None:
        self.evaluate = evaluate
        self._queue: deque[Genome] = deque()

    def submit(self, genome: Genome) -> None:
        self._queue.append(genome)

    def next_result(self) -> tuple[Genome, Any]:
        genome = self._queue.popleft()
        result = self.evaluate(genome)
        if not hasattr(result, "objectives"):  # a plain scoring function: K scores, one number or None
            result = Outcome(result)  # Searcher.tell reads and checks them
        return genome, result

    def close(self) -> None:
        self._queue.clear()
