"""One candidate of a search, as the search engine sees it: no tensors, no training."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

OK, REJECTED, DUPLICATE, FAILED = "ok", "rejected", "duplicate", "failed"
STATUSES = (OK, REJECTED, DUPLICATE, FAILED)


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
    """(objectives, problem): NaN or infinite scores, or a wrong count, never reach the sorting."""
    if objectives is None:
        return None, None
    values = tuple(float(v) for v in objectives)
    if not values:
        return None, "no objectives"
    if expected is not None and len(values) != expected:
        return None, f"{len(values)} objectives where the search has {expected}"
    if not all(math.isfinite(v) for v in values):
        return None, f"non-finite objectives {values}"
    return values, None
