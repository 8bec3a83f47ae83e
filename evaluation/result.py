"""The frozen record of one candidate's evaluation."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

from gp.search.record import Status  # the one status vocabulary, shared with the search's records

__all__ = ["EvalResult", "Status"]


@dataclass(frozen=True)
class EvalResult:
    genome: str  # canonical text of the evaluated layer
    key: str
    status: Status
    accuracies: dict[str, float] = field(default_factory=dict)  # anchor -> final validation accuracy
    reason: str | None = None
    stage: str | None = None  # static | stability | training | quality | budget | error | data | worker
    anchor: str | None = None  # the anchor that decided a rejection or failure
    step: int = 0  # training steps reached on the last anchor trained
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    params: dict[str, int] = field(default_factory=dict)  # anchor -> parameter count
    curves: dict[str, dict[int, float]] = field(default_factory=dict)  # anchor -> {step: val accuracy}

    @property
    def objectives(self) -> tuple[float, ...] | None:
        """Per-anchor accuracies (higher is better), or None unless the layer trained everywhere."""
        if self.status not in (Status.OK, Status.DUPLICATE) or not self.accuracies:
            return None
        values = tuple(self.accuracies.values())
        return values if all(math.isfinite(v) for v in values) else None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self) | {"status": self.status.value})

    @classmethod
    def from_json(cls, text: str) -> EvalResult:
        d = json.loads(text)
        d["status"] = Status(d["status"])
        d["curves"] = {a: {int(s): v for s, v in c.items()} for a, c in d.get("curves", {}).items()}
        return cls(**d)
