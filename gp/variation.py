"""The paper's random graphs and mutation, as pure functions of an explicit Generator.

Reachability. The paper grows graphs of 1..10 nodes and mutates one node in place, so a lineage's
node count is fixed at birth and a 1-node lineage can never express EvoNorm-B0 (6 nodes). The
search therefore works on *fixed-length* genomes, as Cartesian GP and AutoML-Zero do: every genome
of a lineage has ``space.max_nodes`` nodes, those the output does not read are dead, and a
mutation that re-draws a live node's inputs may revive them. :func:`pad` turns a paper graph into
that form by prepending random dead nodes, which leaves its function (and key) unchanged, so an
evolution's initial population draws functions exactly as random search does. Any graph of at
most ``max_nodes`` nodes is then reachable from any lineage: write it into the last positions,
one node per mutation.

A mutation that touches only dead nodes changes nothing a fitness could see; :func:`mutate`
keeps such neutral changes (they are the drift that later revivals draw on) and repeats until the
live graph changes, Cartesian GP's "single active mutation".

Point mutations keep a lineage's live size unless a revival happens to fit. Insertions and
deletions (:func:`insert_step`, :func:`delete_step`, mixed with point mutations in
:func:`indel_step`, the default) grow and shrink the live graph by a node or two in one step,
and re-pad it to ``max_nodes``: structure such as "divide by a statistic" can be added to a
layer that already scores well, which on the surrogate benchmark is what point mutations
missed (docs/results.md §1.0a). :func:`insert_step` wraps a node for all its readers, so it can
put a normaliser over an activation but not under one; :func:`insert_edge_step` inserts on one
edge, an input's included (``tanh(x) -> tanh(x / std_batch(x))``), and :func:`indel_edge_step`
mixes both kinds of insertion.
"""

from __future__ import annotations

import numpy as np

from gp.genome import NUM_INPUTS, Genome, Node
from gp.space import PAPER, SearchSpace

MAX_NEUTRAL = 200  # mutation attempts before returning a genome whose live graph did not change


def _random_op(rng: np.random.Generator, space: SearchSpace):
    """An op of ``space`` drawn uniformly."""
    return space.ops[rng.integers(len(space.ops))]


def _renumbered(nodes, mapping) -> list[Node]:
    """``nodes`` with every input index ``i`` replaced by ``mapping(i)``."""
    return [Node(n.op, tuple(mapping(i) for i in n.inputs)) for n in nodes]


def _random_node(position: int, rng: np.random.Generator, space: SearchSpace) -> Node:
    """A uniformly drawn op whose inputs are drawn uniformly among the ``position`` earlier nodes."""
    op = _random_op(rng, space)
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


def pad(genome: Genome, size: int, rng: np.random.Generator, space: SearchSpace = PAPER) -> Genome:
    """``genome`` with random dead nodes prepended up to ``size`` nodes: the same function (same
    key), with material that mutation can revive. A genome already that long is returned as is."""
    extra = size - len(genome.nodes)
    if extra <= 0:
        return genome
    filler = [_random_node(NUM_INPUTS + k, rng, space) for k in range(extra)]

    def shift(i: int) -> int:
        return i if i < NUM_INPUTS else i + extra

    return Genome(tuple(filler + _renumbered(genome.nodes, shift)))


def mutate_node(genome: Genome, position: int, node: Node) -> Genome:
    """``genome`` with intermediate node ``position`` (0-based) replaced by ``node``: the
    deterministic core of a mutation, which :func:`mutate` draws at random."""
    nodes = list(genome.nodes)
    nodes[position] = node
    return Genome(tuple(nodes))


def paper_step(genome: Genome, rng: np.random.Generator, space: SearchSpace = PAPER) -> Genome:
    """The paper's three-step mutation: pick an intermediate node uniformly, replace its op with a
    uniformly drawn one, and re-draw its predecessors uniformly among the earlier nodes."""
    k = int(rng.integers(len(genome.nodes)))
    return mutate_node(genome, k, _random_node(NUM_INPUTS + k, rng, space))


def point_step(genome: Genome, rng: np.random.Generator, space: SearchSpace = PAPER) -> Genome:
    """Cartesian GP's point mutation, a smaller move: pick a node uniformly, then one of its genes
    (its op, or one of its inputs) uniformly, and re-draw that gene alone. A new op keeps the
    node's inputs where its arity allows and draws the ones it lacks."""
    k = int(rng.integers(len(genome.nodes)))
    node = genome.nodes[k]
    gene = int(rng.integers(1 + len(node.inputs)))
    position = NUM_INPUTS + k
    if gene == 0:
        op = _random_op(rng, space)
        missing = max(0, op.arity - len(node.inputs))
        inputs = node.inputs[:op.arity] + tuple(int(i) for i in rng.integers(position, size=missing))
        return mutate_node(genome, k, Node(op.name, inputs))
    inputs = list(node.inputs)
    inputs[gene - 1] = int(rng.integers(position))
    return mutate_node(genome, k, Node(node.op, tuple(inputs)))


def mixed_step(genome: Genome, rng: np.random.Generator, space: SearchSpace = PAPER) -> Genome:
    """The paper's node re-draw or a point mutation, with equal probability."""
    return (paper_step if rng.random() < 0.5 else point_step)(genome, rng, space)


def insert_step(genome: Genome, rng: np.random.Generator, space: SearchSpace = PAPER) -> Genome:
    """Insert a node after a live one: ``t`` becomes ``op(t, s)`` (or ``op(s, t)``, or ``op(t)``)
    for every node that read ``t``, where ``s`` is an earlier node or, half the time, a new
    one-input node (a statistic, an activation) of an earlier node. One step wraps a layer in a
    normaliser (``relu(x)`` -> ``relu(x) / std_group(x)``), which point mutations reach only
    through a dead node that happens to compute the right thing. The result is the live graph
    with the insertion, padded back to ``space.max_nodes``; a graph with no room left gets a
    point mutation instead."""
    live = list(genome.canonical.nodes)
    if len(live) + 2 > space.max_nodes:
        return point_step(genome, rng, space)
    return _wrap(live, int(rng.integers(len(live))), rng, space)


def insert_edge_step(genome: Genome, rng: np.random.Generator, space: SearchSpace = PAPER) -> Genome:
    """Insert a node on one edge of the live graph: one argument ``a`` of one live node becomes
    ``op(a, s)`` (or ``op(s, a)``, or ``op(a)``) for that reader alone, where ``s`` is any index the
    reader could read (``a`` included) or, half the time, a new one-input node of one. Unlike
    :func:`insert_step`, the edge may leave an input, so ``tanh(x) -> tanh(x / std_batch(x))`` is
    one step: a normaliser can go *under* an activation, where wrapping a node only puts it over
    one. The output's own edge (``t`` -> ``op(t, s)``) is one of the edges. Padded back to
    ``space.max_nodes``; no room left: a point mutation."""
    live = list(genome.canonical.nodes)
    if len(live) + 2 > space.max_nodes:
        return point_step(genome, rng, space)
    edges = [(c, j) for c, n in enumerate(live) for j in range(len(n.inputs))]
    pick = int(rng.integers(len(edges) + 1))
    if pick == len(edges):  # the output's edge: wrap the output node
        return _wrap(live, len(live) - 1, rng, space)
    c, j = edges[pick]
    a, before = live[c].inputs[j], NUM_INPUTS + c  # the argument, and how many indices c may read
    new = _inserted(a, before, rng, space, earlier=before)
    shift = len(new)

    def after(i: int) -> int:
        return i + shift if i >= before else i

    args = list(live[c].inputs)  # all below ``before``: they keep their numbers
    args[j] = before + shift - 1  # the last inserted node
    nodes = live[:c] + new + [Node(live[c].op, tuple(args))] + _renumbered(live[c + 1:], after)
    return pad(Genome(tuple(nodes)), space.max_nodes, rng, space)


def _inserted(a: int, before: int, rng: np.random.Generator, space: SearchSpace, earlier: int) -> list[Node]:
    """The node(s) computing ``op(a)``, ``op(a, s)`` or ``op(s, a)``, to be placed at index
    ``before``; ``s`` is an index below ``earlier`` or, half the time, a new one-input node of an
    index below ``before``."""
    op = _random_op(rng, space)
    if op.arity == 1:
        return [Node(op.name, (a,))]
    new: list[Node] = []
    if rng.random() < 0.5:  # a new one-input node of an earlier node (or of a itself)
        unary = [o for o in space.ops if o.arity == 1]
        other = unary[rng.integers(len(unary))]
        new.append(Node(other.name, (int(rng.integers(before)),)))
        s = before
    else:
        s = int(rng.integers(earlier))
    new.append(Node(op.name, (a, s) if rng.random() < 0.5 else (s, a)))
    return new


def _wrap(live: list[Node], position: int, rng: np.random.Generator, space: SearchSpace) -> Genome:
    """``live`` with node ``position`` (0-based) wrapped: every reader of ``t`` reads ``op(t, s)``."""
    k = NUM_INPUTS + position
    new = _inserted(k, k + 1, rng, space, earlier=k)  # s is an earlier node, not t itself
    shift = len(new)
    wrapped = k + shift

    def after(i: int) -> int:
        return wrapped if i == k else (i + shift if i > k else i)

    head, tail = live[:position + 1], live[position + 1:]
    return pad(Genome(tuple(head + new + _renumbered(tail, after))), space.max_nodes, rng, space)


def delete_step(genome: Genome, rng: np.random.Generator, space: SearchSpace = PAPER) -> Genome:
    """Remove a live node: whatever read ``t = op(a, b)`` reads one of ``a``, ``b`` instead (the
    output is replaced by a copy of a node it reads). The converse of :func:`insert_step`, so
    that lineages can shrink back to short graphs; a one-node graph gets a point mutation."""
    live = list(genome.canonical.nodes)
    if len(live) == 1:
        return point_step(genome, rng, space)
    k = NUM_INPUTS + int(rng.integers(len(live)))
    node = live[k - NUM_INPUTS]
    if k == NUM_INPUTS + len(live) - 1:  # the output: it becomes a node it read (it reads one)
        computed = [i for i in node.inputs if i >= NUM_INPUTS]
        live[-1] = live[computed[int(rng.integers(len(computed)))] - NUM_INPUTS]
    else:
        keep = node.inputs[int(rng.integers(len(node.inputs)))]
        live = live[:k - NUM_INPUTS + 1] + _renumbered(live[k - NUM_INPUTS + 1:], lambda i: keep if i == k else i)
    return pad(Genome(tuple(live)).canonical, space.max_nodes, rng, space)


def indel_step(genome: Genome, rng: np.random.Generator, space: SearchSpace = PAPER) -> Genome:
    """A point mutation, or with probability 1/3 an insertion or a deletion (1/6 each), as
    AutoML-Zero's mutations insert and remove instructions beside re-drawing arguments."""
    u = rng.random()
    if u < 1 / 6:
        return insert_step(genome, rng, space)
    if u < 1 / 3:
        return delete_step(genome, rng, space)
    return point_step(genome, rng, space)


def indel_edge_step(genome: Genome, rng: np.random.Generator, space: SearchSpace = PAPER) -> Genome:
    """:func:`indel_step` with half of its insertions on an edge (:func:`insert_edge_step`)
    instead of over a node: a point mutation, or with probability 1/12 each an insertion over a
    node or on an edge, or with 1/6 a deletion."""
    u = rng.random()
    if u < 1 / 12:
        return insert_step(genome, rng, space)
    if u < 1 / 6:
        return insert_edge_step(genome, rng, space)
    if u < 1 / 3:
        return delete_step(genome, rng, space)
    return point_step(genome, rng, space)


def crossover_step(genome: Genome, donor: Genome, rng: np.random.Generator, space: SearchSpace = PAPER) -> Genome:
    """Koza's subtree crossover on graphs: a live node ``t`` of ``genome`` is replaced by a live
    node ``u`` of ``donor`` together with every node ``u`` reads, and whatever read ``t`` reads
    the copy of ``u``. Building blocks found by different lineages (a statistic, a normaliser, an
    activation) can meet in one layer in a single step, which mutation reaches only by drawing
    them again node by node. The nodes ``t`` alone read die, repeated sub-expressions are merged
    (:attr:`Genome.canonical`), and the result is padded back to ``space.max_nodes``. When the
    graft would not fit in ``space.max_nodes``, a point mutation of ``genome`` is returned."""
    live, other = list(genome.canonical.nodes), donor.canonical.nodes
    k = int(rng.integers(len(live)))  # the node replaced (index among the live nodes)
    u = int(rng.integers(len(other)))  # the donor's root
    graft = Genome(other[:u + 1]).canonical.nodes  # u and every node it reads, u last
    base = NUM_INPUTS + k
    copied = _renumbered(graft, lambda i: i if i < NUM_INPUTS else i + k)  # placed from position k on
    root, shift = base + len(graft) - 1, len(graft) - 1

    def after(i: int) -> int:
        return root if i == base else (i + shift if i > base else i)

    child = Genome(tuple(live[:k] + copied + _renumbered(live[k + 1:], after))).canonical
    if len(child.nodes) > space.max_nodes:
        return point_step(genome, rng, space)
    return pad(child, space.max_nodes, rng, space)


STEPS = {"paper": paper_step, "point": point_step, "mixed": mixed_step, "indel": indel_step,
         "indel_edge": indel_edge_step}


def mutate(genome: Genome, rng: np.random.Generator, space: SearchSpace = PAPER, *, active: bool = True,
           step: str = "paper", repeat: float = 0.0) -> Genome:
    """Mutate ``genome`` by ``step`` (:data:`STEPS`; ``"paper"``: the paper's node re-draw).

    ``active=True`` repeats the step, keeping every change, until the live graph differs from the
    parent's (at most :data:`MAX_NEUTRAL` steps), so that no evaluation is spent on a clone.
    ``repeat`` in [0, 1): after that first mutation, another one follows with this probability,
    and so on (a geometric number of mutations, mean 1 / (1 - repeat)): an occasional larger
    jump out of a local optimum, while most children stay one step from their parent.
    """
    if step not in STEPS:
        raise ValueError(f"unknown mutation step {step!r}; valid: {', '.join(STEPS)}")
    if not 0.0 <= repeat < 1.0:
        raise ValueError(f"repeat must be in [0, 1), got {repeat}")
    child = genome
    while True:
        start = child
        for _ in range(MAX_NEUTRAL if active else 1):
            child = STEPS[step](child, rng, space)
            if child.key != start.key:
                break
        if not (repeat and rng.random() < repeat):
            return child
