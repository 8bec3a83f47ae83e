"""The search space: which ops a search may use and how large a random graph grows."""

from __future__ import annotations

from dataclasses import dataclass

from gp import ops


@dataclass(frozen=True)
class SearchSpace:
    """``batch_stats=False`` removes the four batch aggregates: the paper's batch-independent
    ("S") search. ``max_nodes`` bounds the intermediate nodes of generated graphs (paper: 10)."""

    batch_stats: bool = True
    max_nodes: int = 10

    def __post_init__(self) -> None:
        if not 1 <= self.max_nodes:
            raise ValueError(f"max_nodes must be at least 1, got {self.max_nodes}")

    @property
    def ops(self) -> tuple[ops.Op, ...]:
        return tuple(op for op in ops.OPS.values() if self.batch_stats or not op.uses_batch)

    def allows(self, genome) -> bool:
        """True when every live op of ``genome`` belongs to this space."""
        names = {op.name for op in self.ops}
        return all(genome.node(i).op in names for i in genome.live if i >= len(ops.INPUTS))


PAPER = SearchSpace()
BATCH_INDEPENDENT = SearchSpace(batch_stats=False)
