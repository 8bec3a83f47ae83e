"""What a user types for a layer, resolved to a genome: a zoo name, genome text, an expression,
``RUN_ID:RANK``, the RANK-th best layer (1 = best mean validation accuracy over the anchors) of a
search tracked in MLflow (``latest:1`` for the newest search's best), or ``DIR:RANK``, the same of
the search whose directory (its event log, ``DIR/events.jsonl``) is ``DIR``.
"""

from __future__ import annotations

import re
from pathlib import Path

from gp import Genome, zoo
from gp.search import Record, Searcher, events, ranked  # ranked: the order of ``evonorm rerank`` and reports
from gp.search.eventlog import EVENTS

__all__ = ["RUN_RANK", "is_run_rank", "is_search_dir", "logged_history", "ranked", "resolve"]

RUN_RANK = re.compile(r"(?P<run>[0-9a-fA-F]{32}|latest):(?P<rank>[0-9]+)")


def is_run_rank(spec: str) -> bool:
    return RUN_RANK.fullmatch(spec.strip()) is not None or _dir_rank(spec) is not None


def is_search_dir(path: str | Path) -> bool:
    """Whether ``path`` is a search directory: one that holds an event log."""
    return (Path(path) / EVENTS).is_file()


def logged_history(out: str | Path) -> list[Record]:
    """The evaluated records of the search in directory ``out``, in order, read from its event log
    (the search's source of truth; no tracking store is needed)."""
    path = Path(out) / EVENTS
    if not path.is_file():
        raise FileNotFoundError(f"{out}: not a search directory (no {EVENTS} in it)")
    history: list[Record] = []
    for n, event in enumerate(events.read(path), 1):
        if event["type"] == "snapshot":  # a search continued from a checkpoint or a tracking store
            history = list(Searcher.from_state(event["state"], fingerprint=None).history)
        elif event["type"] == "evaluated":
            record = Record.from_dict(event["record"])
            if record.ordinal != len(history):
                raise events.LogError(f"{path}, event {n}: record {record.ordinal} where record {len(history)} "
                                      "was due (the log was edited, or two searches wrote it)")
            history.append(record)
    return history


def _dir_rank(spec: str) -> tuple[Path, int] | None:
    """(directory, rank) when ``spec`` is DIR:RANK with DIR an existing directory (a directory that
    is not a search is then an error naming it, not a layer expression)."""
    head, sep, rank = spec.strip().rpartition(":")
    if not (sep and head and re.fullmatch(r"[0-9]+", rank) and Path(head).is_dir()):
        return None
    if not is_search_dir(head):
        raise FileNotFoundError(f"{spec!r}: {head} is not a search directory (no {EVENTS} in it)")
    return Path(head), int(rank)


def resolve(spec: str, *, tracking_uri: str | None = None, experiment: str = "evonorm",
            tracker=None) -> tuple[str, Genome]:
    """(a short label, the genome) for ``spec``. The tracking store is read only for RUN_ID:RANK:
    through ``tracker`` (an open :class:`evaluation.tracking.Tracker`) when given, else a new
    client of ``tracking_uri``."""
    spec = spec.strip()
    m, at_dir = RUN_RANK.fullmatch(spec), _dir_rank(spec)
    if at_dir is not None:
        out, rank = at_dir
        return f"{out}:{rank}", _nth(ranked(logged_history(out)), rank, spec, f"the search in {out}")
    if m is None:
        genome = zoo.resolve(spec)
        return (spec if spec in zoo.names() else f"layer-{genome.key[:8]}"), genome
    if tracker is None:
        from evaluation.tracking import Tracker

        tracker = Tracker(tracking_uri, experiment)
    run_id = tracker.resolve(m["run"])
    rank = int(m["rank"])
    return f"{run_id[:8]}-{rank}", _nth(ranked(tracker.history(run_id)), rank, spec, f"search {run_id}")


def _nth(layers: list[Record], rank: int, spec: str, search: str) -> Genome:
    if not 1 <= rank <= len(layers):
        raise ValueError(f"{spec!r}: rank must be in 1..{len(layers)}, the layers of {search} that trained "
                         "on every anchor" if layers else f"{spec!r}: {search} has no layer that trained on "
                         "every anchor")
    return Genome.parse(layers[rank - 1].genome)
