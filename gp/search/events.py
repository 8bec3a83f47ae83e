"""A search's append-only event log: one JSON object per line, the single source of truth.

Writing is an append (flushed and fsync'd), so a kill at any instant loses at most the line being
written; a torn last line is dropped when the log is read and cut off when it is reopened for
writing. The searcher is a replay of the log (:func:`replay`) — resuming from a directory and
from a tracking store are the same path — and a tracking store is a projection of it.

Events the searcher follows (``type``):

- ``snapshot``: a whole searcher state (:meth:`Searcher.state`), where the log continues a search
  saved in another form (an old checkpoint, a tracking store);
- ``asked``: a genome handed out, with the RNG state and the counters' changes of that ask;
- ``evaluated``: its record (as told) and the evaluator's full result;
- ``retried``: an evaluation that failed for a reason outside the layer (data, device, worker
  start); the genome stays asked and is submitted again, nothing is told.

Any other type (the search's config, resumption with overrides, tracking, interruption) is the
experiment's business; :func:`replay` skips it.
"""

from __future__ import annotations

import copy
import json
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gp.checks import fingerprint as functional_fingerprint
from gp.genome import Genome
from gp.search.record import Record
from gp.search.searcher import Fingerprint, Searcher


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


# -- the searcher's events ------------------------------------------------------------------------

class AskWatch:
    """Takes the counters before an ask, so :meth:`event` can log only what the ask changed."""

    def __init__(self, searcher: Searcher) -> None:
        self.searcher = searcher
        self.redraws = searcher.in_flight_redraws
        self.hits = Counter(searcher.duplicate_hits)

    def event(self, genome: Genome) -> dict:
        s = self.searcher
        _, parent, fp = s.pending[genome.key]
        hits = Counter(s.duplicate_hits)
        hits.subtract(self.hits)
        event = {"type": "asked", "genome": str(genome), "key": genome.key, "parent": parent, "fingerprint": fp,
                 "rng": s.rng.bit_generator.state, "redraws": s.in_flight_redraws - self.redraws,
                 "duplicates": {str(k): n for k, n in hits.items() if n}}
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


def replay(events: Iterable[dict], initial: dict, *, fingerprint: Fingerprint | None = functional_fingerprint
           ) -> Searcher:
    """The searcher the events describe, starting from ``initial`` (a fresh searcher's state).

    Records must arrive in order and each must answer an ``asked`` genome; anything else means the
    log was edited or two drivers wrote it, and is a :class:`LogError`.
    """
    state, history, pending, hits, redraws = _unpack(initial)
    for n, event in enumerate(events, 1):
        kind = event["type"]
        if kind == "snapshot":
            state, history, pending, hits, redraws = _unpack(event["state"])
        elif kind == "asked":
            pending[event["key"]] = {"genome": event["genome"], "parent": event["parent"],
                                     "fingerprint": event["fingerprint"]}
            state["rng"] = event["rng"]
            redraws += event.get("redraws", 0)
            hits.update({int(k): v for k, v in event.get("duplicates", {}).items()})
            if "seeded" in event:
                state["seeded"] = event["seeded"]
        elif kind == "evaluated":
            record = event["record"]
            if record["ordinal"] != len(history):
                raise LogError(f"event {n}: record {record['ordinal']} where record {len(history)} was due")
            if pending.pop(record["key"], None) is None:
                raise LogError(f"event {n}: record {record['ordinal']} answers a genome that was not asked")
            history.append(record)
            if state.get("num_objectives") is None and record.get("objectives") is not None:
                state["num_objectives"] = len(record["objectives"])
    state["history"], state["pending"] = history, list(pending.values())
    state["counters"] = {"in_flight_redraws": redraws, "duplicate_hits": {str(k): v for k, v in hits.items()}}
    return Searcher.from_state(state, fingerprint=fingerprint)


def _unpack(state: dict) -> tuple[dict, list[dict], dict[str, dict], Counter, int]:
    """(state, history, pending by key, duplicate hits, redraws) of a whole searcher state."""
    if any(r.get("status") == "duplicate" for r in state.get("history", [])):
        # written before duplicates stopped being records: the searcher renumbers it once
        state = Searcher.from_state(state, fingerprint=None).state()
    state = copy.deepcopy(state)
    counters = state.get("counters", {})
    hits = Counter({int(k): v for k, v in counters.get("duplicate_hits", {}).items()})
    pending = {Genome.parse(p["genome"]).key: dict(p) for p in state.get("pending", [])}
    return state, list(state.get("history", [])), pending, hits, counters.get("in_flight_redraws", 0)
