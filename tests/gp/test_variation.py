import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gp import BATCH_INDEPENDENT, Genome, SearchSpace, mutate, random_genome


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_random_genomes_are_valid_and_bounded(seed):
    g = random_genome(np.random.default_rng(seed))
    assert 1 <= len(g.nodes) <= 10
    assert Genome.parse(str(g)) == g


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_mutation_changes_one_node_and_stays_valid(seed):
    rng = np.random.default_rng(seed)
    g = random_genome(rng)
    child = mutate(g, rng)
    assert len(child.nodes) == len(g.nodes)
    assert sum(a != b for a, b in zip(g.nodes, child.nodes, strict=False)) <= 1
    assert Genome.parse(str(child)) == child


def test_generation_is_determined_by_the_generator():
    a = [random_genome(np.random.default_rng(7)) for _ in range(3)]
    b = [random_genome(np.random.default_rng(7)) for _ in range(3)]
    assert a == b
    assert mutate(a[0], np.random.default_rng(1)) == mutate(a[0], np.random.default_rng(1))


def test_ops_and_inputs_are_drawn_uniformly():
    rng = np.random.default_rng(0)
    ops_seen, first_inputs = {}, []
    for _ in range(3000):
        g = random_genome(rng, num_nodes=1)
        ops_seen[g.nodes[0].op] = ops_seen.get(g.nodes[0].op, 0) + 1
        first_inputs.append(g.nodes[0].inputs[0])
    assert len(ops_seen) == 24
    assert min(ops_seen.values()) > 3000 / 24 * 0.6
    assert set(first_inputs) == {0, 1, 2, 3}


def test_batch_independent_space_never_draws_batch_ops():
    rng = np.random.default_rng(0)
    for _ in range(300):
        g = random_genome(rng, BATCH_INDEPENDENT)
        assert not any(n.op.endswith("_batch") for n in g.nodes)
        g = mutate(g, rng, BATCH_INDEPENDENT)
        assert not any(n.op.endswith("_batch") for n in g.nodes)
    assert len(BATCH_INDEPENDENT.ops) == 21


def test_space_size_limit_applies():
    rng = np.random.default_rng(0)
    assert all(len(random_genome(rng, SearchSpace(max_nodes=3)).nodes) <= 3 for _ in range(50))
