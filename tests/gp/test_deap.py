import math
import random

import numpy as np
import pytest
import torch
from deap import algorithms, gp, tools

from gp import BATCH_INDEPENDENT, Genome, GenomeError, compile_layer, from_tree, make_pset, make_toolbox, to_tree, zoo
from gp.variation import random_genome


def _layer_inputs(gen, c=16):
    x = torch.randn(4, c, 3, 3, generator=gen) * 2 + 0.5
    v0 = torch.randn(1, c, 1, 1, generator=gen)
    v1 = torch.randn(1, c, 1, 1, generator=gen) + 1
    return x, v0, v1


def _graph_output(genome, x, v0, v1):
    """The compiled layer's graph output (its affine is the identity at init)."""
    layer = compile_layer(genome, x.shape[1]).train()
    with torch.no_grad():
        layer.v0.copy_(v0)
        layer.v1.copy_(v1)
        return layer(x)


def test_pset_compiles_expressions_with_deap():
    pset = make_pset()
    tree = gp.PrimitiveTree.from_string("mul(x, sigmoid(mul(v1, x)))", pset)
    x, v0, v1 = _layer_inputs(torch.Generator().manual_seed(0))
    out = gp.compile(tree, pset)(x, v0, v1)
    assert torch.allclose(out, x * torch.sigmoid(v1 * x))
    assert len(pset.primitives[torch.Tensor]) == 24
    assert len(make_pset(BATCH_INDEPENDENT).primitives[torch.Tensor]) == 21


@pytest.mark.parametrize("seed", range(40))
def test_tree_and_dag_compute_the_same_function(seed):
    genome = random_genome(np.random.default_rng(seed))
    pset = make_pset()
    tree = to_tree(genome, pset)
    x, v0, v1 = _layer_inputs(torch.Generator().manual_seed(seed))
    via_tree = gp.compile(tree, pset)(x, v0, v1).expand_as(x)
    torch.testing.assert_close(via_tree, _graph_output(genome, x, v0, v1), equal_nan=True)
    back = from_tree(tree)
    assert back.key == genome.key
    torch.testing.assert_close(_graph_output(back, x, v0, v1), _graph_output(genome, x, v0, v1), equal_nan=True)


def test_from_tree_merges_repeated_subtrees():
    pset = make_pset()
    tree = gp.PrimitiveTree.from_string("mul(sigmoid(x), sigmoid(x))", pset)
    assert str(from_tree(tree)) == "t1 = sigmoid(x); t2 = mul(t1, t1)"


def test_from_tree_refuses_a_bare_terminal():
    pset = make_pset()
    with pytest.raises(GenomeError, match="needs an op at its root"):
        from_tree(gp.PrimitiveTree([pset.mapping["x"]]))


def test_toolbox_operators_keep_valid_genomes():
    random.seed(1)
    tb = make_toolbox(rng=np.random.default_rng(1))
    pop = tb.population(30)
    for _ in range(5):
        for ind in pop:
            for op in (tb.mutate, tb.mutate_node, tb.mutate_paper):
                (ind,) = op(ind)
                assert ind.height <= 17
                from_tree(ind)  # raises if not a layer
        for a, b in zip(pop[::2], pop[1::2], strict=False):
            tb.mate(a, b)
            from_tree(a), from_tree(b)


def test_easimple_fits_a_known_layer():
    """DEAP's own eaSimple, on our toolbox unchanged, improves the fit to EvoNorm-S0's graph."""
    gen = torch.Generator().manual_seed(0)
    x, v0, v1 = _layer_inputs(gen)
    target = _graph_output(zoo.get("evonorm_s0"), x, v0, v1)
    pset = make_pset(BATCH_INDEPENDENT)
    tb = make_toolbox(pset, rng=np.random.default_rng(0), space=BATCH_INDEPENDENT)

    def fitness(ind):
        with torch.no_grad():
            out = tb.compile(expr=ind)(x, v0, v1)
        err = float(((out - target) ** 2).mean())
        return (-err if math.isfinite(err) else -1e12,)

    tb.register("evaluate", fitness)
    random.seed(3)
    pop = tb.population(60)
    hof = tools.HallOfFame(1)
    for ind in pop:
        ind.fitness.values = tb.evaluate(ind)
    start = max(ind.fitness.values[0] for ind in pop)
    algorithms.eaSimple(pop, tb, cxpb=0.5, mutpb=0.3, ngen=12, halloffame=hof, verbose=False)
    assert hof[0].fitness.values[0] > start
    assert Genome.parse(str(from_tree(hof[0]))).key == from_tree(hof[0]).key
