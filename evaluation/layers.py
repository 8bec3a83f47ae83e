"""What a user types for a layer, resolved to a genome: a zoo name, genome text, an expression, or
``RUN_ID:RANK``, the RANK-th best layer (1 = best mean validation accuracy over the anchors) of a
search tracked in MLflow (``latest:1`` for the newest search's best).
"""

from __future__ import annotations

import re

from gp import Genome, zoo
from gp.search import ranked  # the order of ``evonorm rerank`` and reports; importable from here as before

__all__ = ["RUN_RANK", "is_run_rank", "ranked", "resolve"]

RUN_RANK = re.compile(r"(?P<run>[0-9a-fA-F]{32}|latest):(?P<rank>\d+)")


def is_run_rank(spec: str) -> bool:
    return RUN_RANK.fullmatch(spec.strip()) is not None


def resolve(spec: str, *, tracking_uri: str | None = None, experiment: str = "evonorm") -> tuple[str, Genome]:
    """(a short label, the genome) for ``spec``; the tracking store is opened only for RUN_ID:RANK."""
    spec = spec.strip()
    m = RUN_RANK.fullmatch(spec)
    if m is None:
        genome = zoo.resolve(spec)
        return (spec if spec in zoo.names() else f"layer-{genome.key[:8]}"), genome
    from evaluation.tracking import Tracker

    tracker = Tracker(tracking_uri, experiment)
    run_id = tracker.resolve(m["run"])
    rank = int(m["rank"])
    layers = ranked(tracker.history(run_id))
    if not 1 <= rank <= len(layers):
        raise ValueError(f"{spec!r}: rank must be in 1..{len(layers)}, the layers of search {run_id} that trained "
                         "on every anchor" if layers else f"{spec!r}: search {run_id} has no layer that trained on "
                         "every anchor")
    record = layers[rank - 1]
    return f"{run_id[:8]}-{rank}", Genome.parse(record.genome)
