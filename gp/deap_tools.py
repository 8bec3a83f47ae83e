"""The tree genome through DEAP: primitive set, DAG <-> tree conversion, a ready toolbox.

Other studies reuse these with DEAP's own algorithms::

    pset = make_pset()
    toolbox = make_toolbox(pset)
    toolbox.register("evaluate", my_fitness)          # individual -> (score,)
    deap.algorithms.eaSimple(toolbox.population(50), toolbox, 0.5, 0.2, 10)

The individual and fitness classes are defined here, at module level, rather than through
``deap.creator``: they pickle for spawn-based workers and leave DEAP's global namespace alone.
DEAP's operators draw from Python's global ``random`` module; seed it to fix a DEAP run. Our own
operators (:func:`mut_paper`) take an explicit ``numpy.random.Generator``.

``PrimitiveTree.from_string`` calls ``eval`` on tokens it does not know: never give it untrusted
text; :meth:`gp.Genome.from_expression` reads the same syntax safely.
"""

from __future__ import annotations

from operator import attrgetter

import numpy as np
import torch
from deap import base, gp, tools

from gp import ops
from gp.genome import NUM_INPUTS, Genome, GenomeError, Node
from gp.space import PAPER, SearchSpace
from gp.variation import mutate

Tensor = torch.Tensor
ZERO = torch.zeros(())
"""The value of the terminal ``zero`` (0-D, so it broadcasts onto any tensor and device)."""


class FitnessMax(base.Fitness):
    """One objective, higher is better."""

    weights = (1.0,)


class Individual(gp.PrimitiveTree):
    """A ``PrimitiveTree`` with a ``fitness``, as DEAP's algorithms expect."""

    def __init__(self, content) -> None:
        super().__init__(content)
        self.fitness = FitnessMax()


def make_pset(space: SearchSpace = PAPER) -> gp.PrimitiveSetTyped:
    """A typed primitive set over torch tensors: arguments ``x, v0, v1``, terminal ``zero``, and
    one primitive per op of ``space``, so ``gp.compile(tree, pset)(x, v0, v1)`` computes the graph
    (without the final affine)."""
    pset = gp.PrimitiveSetTyped("layer", [Tensor, Tensor, Tensor], Tensor)
    pset.renameArguments(ARG0="x", ARG1="v0", ARG2="v1")
    pset.addTerminal(ZERO, Tensor, name="zero")
    for op in space.ops:
        pset.addPrimitive(op.fn, [Tensor] * op.arity, Tensor, name=op.name)
    return pset


def to_tree(genome: Genome, pset: gp.PrimitiveSetTyped | None = None) -> gp.PrimitiveTree:
    """The live graph as a DEAP prefix tree (shared nodes are written out at each use)."""
    pset = pset if pset is not None else make_pset()
    out: list = []
    stack = [genome.output]
    while stack:  # pre-order, arguments left to right
        i = stack.pop()
        name = ops.INPUTS[i] if i < NUM_INPUTS else genome.node(i).op
        if name not in pset.mapping:
            raise GenomeError(f"{name!r} is not in the primitive set {pset.name!r}")
        out.append(pset.mapping[name])
        if i >= NUM_INPUTS:
            stack.extend(reversed(genome.node(i).inputs))
    return gp.PrimitiveTree(out)


def from_tree(tree: gp.PrimitiveTree) -> Genome:
    """The DAG genome of a DEAP tree; repeated sub-trees become one node."""
    nodes: list[Node] = []
    index: dict[Node, int] = {}
    stack: list[int] = []
    for element in reversed(tree):
        # a renamed argument keeps its old ``name`` ("ARG0"); its ``value`` is the new one
        name = str(element.value) if isinstance(element, gp.Terminal) else element.name
        if element.arity == 0:
            if name not in ops.INPUTS:
                raise GenomeError(f"tree leaf {name!r} is not an input; valid: {', '.join(ops.INPUTS)}")
            stack.append(ops.INPUTS.index(name))
            continue
        if name not in ops.OPS:
            raise GenomeError(f"tree primitive {name!r} is not an op; valid: {', '.join(ops.OPS)}")
        args = tuple(stack.pop() for _ in range(element.arity))
        node = Node(name, args)
        if node not in index:
            index[node] = NUM_INPUTS + len(nodes)
            nodes.append(node)
        stack.append(index[node])
    if len(stack) != 1 or stack[0] < NUM_INPUTS:
        raise GenomeError(f"tree {str(tree)!r} is not a layer: it needs an op at its root")
    return Genome(tuple(nodes)).canonical  # number nodes left to right, as the text forms do


def mut_paper(individual: gp.PrimitiveTree, pset: gp.PrimitiveSetTyped, rng: np.random.Generator,
              space: SearchSpace = PAPER) -> tuple[gp.PrimitiveTree]:
    """The paper's mutation applied to a tree individual, in DEAP's convention (in place)."""
    child = to_tree(mutate(from_tree(individual), rng, space), pset)
    list.__setitem__(individual, slice(None), child)  # PrimitiveTree's own [:] refuses open slices
    return (individual,)


def make_toolbox(pset: gp.PrimitiveSetTyped | None = None, *, init_height: tuple[int, int] = (1, 4),
                 max_height: int = 17, rng: np.random.Generator | None = None,
                 space: SearchSpace = PAPER) -> base.Toolbox:
    """A toolbox with DEAP's standard GP operators on our set, bloat-limited by ``staticLimit``.

    Registered: ``expr`` (genHalfAndHalf), ``individual``, ``population``, ``compile``, ``select``
    (tournament of 3), ``mate`` (cxOnePoint), ``expr_mut`` (genFull), ``mutate`` (mutUniform),
    ``mutate_node`` (mutNodeReplacement) and ``mutate_paper`` (the paper's mutation). Trees always
    keep an op at the root, so every individual converts to a :class:`Genome`.
    """
    pset = pset if pset is not None else make_pset(space)
    rng = rng if rng is not None else np.random.default_rng()
    low, high = init_height
    tb = base.Toolbox()
    tb.register("expr", gp.genHalfAndHalf, pset=pset, min_=max(1, low), max_=high)
    tb.register("individual", tools.initIterate, Individual, tb.expr)
    tb.register("population", tools.initRepeat, list, tb.individual)
    tb.register("compile", gp.compile, pset=pset)
    tb.register("select", tools.selTournament, tournsize=3)
    tb.register("mate", gp.cxOnePoint)
    tb.register("expr_mut", gp.genFull, min_=1, max_=2)
    tb.register("mutate", gp.mutUniform, expr=tb.expr_mut, pset=pset)
    tb.register("mutate_node", gp.mutNodeReplacement, pset=pset)
    tb.register("mutate_paper", mut_paper, pset=pset, rng=rng, space=space)
    limit = gp.staticLimit(key=attrgetter("height"), max_value=max_height)
    for name in ("mate", "mutate", "mutate_node", "mutate_paper"):
        tb.decorate(name, limit)
    return tb
