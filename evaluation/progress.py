"""A one-line progress display for long work, on stderr: redrawn in place on a terminal, a line
every few seconds otherwise (logs and CI)."""

from __future__ import annotations

import sys
import time


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
