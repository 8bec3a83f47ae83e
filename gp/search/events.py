"""A search's append-only event log: one JSON object per line, the single source of truth.

The searcher is a replay of the log (:func:`replay`) — resuming from a directory and from a
tracking store are the same path — and a tracking store is a projection of it. Writing and reading
the file (:class:`EventLog`, :func:`read`, the ``asked`` and ``evaluated`` events) live in
:mod:`gp.search.eventlog`, which the engine uses without depending on the searcher; they are
importable from here as before.

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
from collections import Counter
from collections.abc import Iterable

from gp.checks import fingerprint as functional_fingerprint
from gp.genome import Genome
from gp.search.eventlog import AskWatch, EventLog, LogError, evaluated, read, result_dict
from gp.search.record import DUPLICATE
from gp.search.searcher import Fingerprint, Searcher

__all__ = ["AskWatch", "EventLog", "LogError", "evaluated", "read", "replay", "result_dict"]


def replay(events: Iterable[dict], initial: dict, *, fingerprint: Fingerprint | None = functional_fingerprint
           ) -> Searcher:
    """The searcher the events describe, starting from ``initial`` (a fresh searcher's state).

    Records must arrive in order and each must answer an ``asked`` genome; anything else means the
    log was edited or two drivers wrote it, and is a :class:`LogError`.
    """
    state, history, pending, hits, redraws, screened = _unpack(initial)
    for n, event in enumerate(events, 1):
        kind = event["type"]
        if kind == "snapshot":
            state, history, pending, hits, redraws, screened = _unpack(event["state"])
        elif kind == "asked":
            pending[event["key"]] = {"genome": event["genome"], "parent": event["parent"],
                                     "fingerprint": event["fingerprint"]}
            state["rng"] = event["rng"]
            redraws += event.get("redraws", 0)
            hits.update({int(k): v for k, v in event.get("duplicates", {}).items()})
            screened.update(event.get("screened", {}))
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
    state["counters"] = {"in_flight_redraws": redraws, "duplicate_hits": {str(k): v for k, v in hits.items()},
                         "screened": dict(screened)}
    return Searcher.from_state(state, fingerprint=fingerprint)


def _unpack(state: dict) -> tuple[dict, list[dict], dict[str, dict], Counter, int, Counter]:
    """(state, history, pending by key, duplicate hits, redraws, screened) of a whole searcher state."""
    if any(r.get("status") == DUPLICATE for r in state.get("history", [])):
        # written before duplicates stopped being records: the searcher renumbers it once
        state = Searcher.from_state(state, fingerprint=None).state()
    state = copy.deepcopy(state)
    counters = state.get("counters", {})
    hits = Counter({int(k): v for k, v in counters.get("duplicate_hits", {}).items()})
    pending = {Genome.parse(p["genome"]).key: dict(p) for p in state.get("pending", [])}
    return (state, list(state.get("history", [])), pending, hits, counters.get("in_flight_redraws", 0),
            Counter(counters.get("screened", {})))
