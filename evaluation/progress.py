"""A one-line progress display for long work, on stderr: redrawn in place on a terminal, a line
every few seconds otherwise (logs and CI)."""

from __future__ import annotations

import sys
import time
from collections import Counter

from gp.search.record import REJECTED


class ProgressLine:
    def __init__(self, stream=None, interval: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.interval = interval
        self._last = 0.0
        self._width = 0

    def show(self, text: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
        elif force or now - self._last >= self.interval:
            self.stream.write(text + "\n")
            self._last = now
        else:
            return
        self.stream.flush()

    def done(self) -> None:
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

    def training(self, event: dict) -> None:
        """Progress callback for :func:`evaluation.train.train` events."""
        self.show(f"{event['anchor']}: step {event['step']}/{event['steps']}  loss {event['loss']:.3f}",
                  force=event["step"] == event["steps"])


class Tally:
    """Counts and best scores of a search's records, brought up to date by :meth:`update` with
    only the records added since, so a progress line or metric costs the same at record 10 and at
    record 10,000."""

    def __init__(self, anchors: list[str]) -> None:
        self.anchors = anchors
        self.seen = 0
        self.status: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()  # by stage
        self.best: list[float | None] = [None] * len(anchors)
        self.best_mean: float | None = None

    def update(self, history) -> Tally:
        for r in history[self.seen:]:
            self.status[r.status] += 1
            if r.status == REJECTED and r.stage:
                self.rejected[r.stage] += 1
            if r.objectives is not None:
                self.best = [v if b is None else max(b, v) for b, v in zip(self.best, r.objectives, strict=True)]
                self.best_mean = r.mean if self.best_mean is None else max(self.best_mean, r.mean)
        self.seen = len(history)
        return self
