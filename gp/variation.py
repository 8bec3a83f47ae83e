"""The paper's random graphs and mutation, as pure functions of an explicit Generator."""

from __future__ import annotations

import numpy as np

from gp.genome import NUM_INPUTS, Genome, Node
from gp.space import PAPER, SearchSpace


def _random_node(position: int, rng: np.random.Generator, space: SearchSpace) -> Node:
    """A uniformly drawn op whose inputs are drawn uniformly among the ``position`` earlier nodes."""
    candidates = space.ops
    op = candidates[rng.integers(len(candidates))]
    return Node(op.name, tuple(int(i) for i in rng.integers(position, size=op.arity)))


def random_genome(rng: np.random.Generator, space: SearchSpace = PAPER, *, num_nodes: int | None = None) -> Genome:
    """Grow a graph sequentially, the paper's way: each new node picks an op uniformly and its
    inputs uniformly among the existing nodes; the last node is the output.

    The number of intermediate nodes is ``num_nodes`` or uniform in 1..``space.max_nodes``.
    """
    n = int(rng.integers(1, space.max_nodes + 1)) if num_nodes is None else num_nodes
    if not 1 <= n <= space.max_nodes:
        raise ValueError(f"num_nodes must be in 1..{space.max_nodes}, got {num_nodes}")
    return Genome(tuple(_random_node(NUM_INPUTS + k, rng, space) for k in range(n)))


def mutate(genome: Genome, rng: np.random.Generator, space: SearchSpace = PAPER) -> Genome:
    """The paper's three-step mutation: pick an intermediate node uniformly, replace its op with a
    uniformly drawn one, and re-draw its predecessors uniformly among the earlier nodes."""
    k = int(rng.integers(len(genome.nodes)))
    nodes = list(genome.nodes)
    nodes[k] = _random_node(NUM_INPUTS + k, rng, space)
    return Genome(tuple(nodes))
