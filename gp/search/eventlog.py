"""Writing and reading a search's append-only event log: one JSON object per line.

Writing is an append (flushed and fsync'd), so a kill at any instant loses at most the line being
written; a torn last line is dropped when the log is read and cut off when it is reopened for
writing. The events a searcher follows, and the replay that rebuilds it from them, are in
:mod:`gp.search.events`; this half knows the searcher only through :class:`AskTell`, so the engine
can log without depending on the searcher.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from gp.genome import Genome
from gp.search.asktell import AskTell
from gp.search.record import Record

EVENTS = "events.jsonl"
"""The event log's file name in a search directory."""


class LogError(RuntimeError):
    """An event log that cannot be read as a search (corrupt, or not in order)."""


def read(path: Path) -> list[dict]:
    """The events of a log; a torn last line (a kill while writing it) is dropped, a bad line
    anywhere else is a :class:`LogError`."""
    events, _ = _scan(Path(path))
    return events


def _scan(path: Path) -> tuple[list[dict], int]:
    """(events, length in bytes of the good part)."""
    data = path.read_bytes()
    events, good = [], 0
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        last = i == len(lines) - 1
        if not line.strip():
            if not last:
                good += len(line) + 1
            continue
        try:
            event = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            if last:  # no newline after it: the write was cut short
                break
            raise LogError(f"{path}: line {i + 1} is not JSON; the log is damaged") from None
        if last:  # complete JSON but its newline never made it: the write was cut short
            break
        if not isinstance(event, dict) or "type" not in event:
            raise LogError(f"{path}: line {i + 1} is not an event")
        events.append(event)
        good += len(line) + 1
    return events, good


class EventLog:
    """Appends events to one file. :meth:`open` returns the events already there."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held for the search's life

    @classmethod
    def open(cls, path: Path) -> tuple[EventLog, list[dict]]:
        path = Path(path)
        events: list[dict] = []
        if path.exists():
            events, good = _scan(path)
            if good < path.stat().st_size:
                with open(path, "r+b") as f:  # drop the torn tail so the next event starts a line
                    f.truncate(good)
        return cls(path), events

    def append(self, event: dict) -> None:
        self._file.write(json.dumps(event, separators=(",", ":")) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


# -- writing the searcher's events (gp.search.events.replay reads them) ---------------------------

class AskWatch:
    """Takes the counters before an ask, so :meth:`event` can log only what the ask changed."""

    def __init__(self, searcher: AskTell) -> None:
        self.searcher = searcher
        self.redraws = searcher.in_flight_redraws
        self.hits = Counter(searcher.duplicate_hits)
        self.screened = Counter(searcher.screened)

    def event(self, genome: Genome) -> dict:
        s = self.searcher
        _, parent, fp = s.pending[genome.key]
        # counters only grow, so the positive part of the difference is what this ask added
        hits, screened = s.duplicate_hits - self.hits, s.screened - self.screened
        event = {"type": "asked", "genome": str(genome), "key": genome.key, "parent": parent, "fingerprint": fp,
                 "rng": s.rng.bit_generator.state, "redraws": s.in_flight_redraws - self.redraws,
                 "duplicates": {str(k): n for k, n in hits.items()}}
        if screened:
            event["screened"] = dict(screened)
        seeded = getattr(s, "_seeded", None)
        if seeded is not None:
            event["seeded"] = seeded
        return event


def evaluated(record: Record, result: Any) -> dict:
    return {"type": "evaluated", "record": record.to_dict(), "result": result_dict(result)}


def result_dict(result: Any) -> dict | None:
    """An evaluator's result as JSON-able data (its own ``to_json`` where it has one)."""
    if result is None:
        return None
    if hasattr(result, "to_json"):
        return json.loads(result.to_json())
    fields = ("objectives", "status", "reason", "stage")
    out = {f: getattr(result, f, None) for f in fields}
    if out["objectives"] is not None:
        out["objectives"] = list(out["objectives"])
    if out["status"] is not None:
        out["status"] = str(getattr(out["status"], "value", out["status"]))
    return out
