"""One candidate of a search, as the search engine sees it: no tensors, no training.

Also the one home of the status vocabulary (:class:`Status`, the only place its words are
written; :class:`evaluation.result.EvalResult` uses it too) and of ranking records by score
(:func:`ranked`, :func:`best_so_far`), which the searcher, re-ranking, reports and plots share.
"""

from __future__ import annotations

import enum
import math
import numbers
from collections.abc import Iterable
from dataclasses import asdict, dataclass


class Status(enum.StrEnum):
    OK = "ok"  # trained on every anchor; objectives are its validation accuracies
    REJECTED = "rejected"  # a rejection hook stopped it (reason and stage say which)
    DUPLICATE = "duplicate"  # computes the same function as an evaluated layer; result reused
    FAILED = "failed"  # an unexpected error inside the candidate's evaluation


# plain strings, as records hold them (a record read back from JSON holds a str, not a Status)
OK, REJECTED, DUPLICATE, FAILED = (s.value for s in Status)
STATUSES = tuple(s.value for s in Status)


@dataclass(frozen=True)
class Record:
    ordinal: int  # position in the history (0-based)
    genome: str  # text of the genome as asked, dead nodes included (see key for identity)
    key: str
    status: str  # ok | rejected | duplicate | failed
    objectives: tuple[float, ...] | None  # K scores, higher is better; None unless it can win
    parent: str | None = None  # key of the tournament winner it mutates; None for random genomes
    reason: str | None = None
    stage: str | None = None
    fingerprint: str | None = None
    duplicate_of: int | None = None  # ordinal of the evaluated record whose result it reuses

    @property
    def evaluated(self) -> bool:
        """True when the candidate cost an evaluation (duplicates cost none)."""
        return self.status != DUPLICATE

    @property
    def mean(self) -> float:
        return sum(self.objectives) / len(self.objectives) if self.objectives else -math.inf

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Record:
        d = dict(d)
        if d.get("objectives") is not None:
            d["objectives"] = tuple(d["objectives"])
        return cls(**d)


def sanitize(objectives, expected: int | None) -> tuple[tuple[float, ...] | None, str | None]:
    """(objectives, problem): NaN or infinite scores, or a wrong count, never reach the sorting. A
    single number is one objective; what is not a number or a sequence of numbers is a TypeError."""
    if objectives is None:
        return None, None
    if isinstance(objectives, numbers.Real) or getattr(objectives, "ndim", None) == 0:
        objectives = (objectives,)  # a float, a NumPy scalar, a 0-d array or tensor
    try:
        if isinstance(objectives, str | bytes):
            raise TypeError
        values = tuple(float(v) for v in objectives)
    except (TypeError, ValueError):
        raise TypeError("objectives must be a number or a sequence of numbers (higher is better), "
                        f"got {objectives!r}") from None
    if not values:
        return None, "no objectives"
    if expected is not None and len(values) != expected:
        return None, f"{len(values)} objectives where the search has {expected}"
    if not all(math.isfinite(v) for v in values):
        return None, f"non-finite objectives {values}"
    return values, None


def ranked(records: Iterable[Record]) -> list[Record]:
    """Evaluated records that can win (objectives present), best mean score first, ties broken by
    the earliest: the order of ``Searcher.best``, reports, ``RUN_ID:RANK`` and re-ranking."""
    scored = [r for r in records if r.objectives is not None and r.evaluated]
    return sorted(scored, key=lambda r: (-r.mean, r.ordinal))


def best_so_far(records: Iterable[Record]) -> list[float]:
    """For each evaluated record in order, the best mean score up to it (NaN until one scores)."""
    curve, best = [], math.nan
    for r in records:
        if not r.evaluated:
            continue
        if r.objectives is not None:
            best = r.mean if math.isnan(best) else max(best, r.mean)
        curve.append(best)
    return curve
