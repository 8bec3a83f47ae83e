import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gp import BATCH_INDEPENDENT, PAPER, Genome, SearchSpace, mutate, random_genome, zoo
from gp.genome import NUM_INPUTS, Node
from gp.variation import crossover_step, delete_step, insert_edge_step, insert_step, mutate_node, pad


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_random_genomes_are_valid_and_bounded(seed):
    g = random_genome(np.random.default_rng(seed))
    assert 1 <= len(g.nodes) <= 10
    assert Genome.parse(str(g)) == g


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_mutation_changes_the_live_graph_and_keeps_the_length(seed):
    rng = np.random.default_rng(seed)
    g = pad(random_genome(rng), 10, rng)
    child = mutate(g, rng)
    assert len(child.nodes) == 10 and child.key != g.key
    assert Genome.parse(str(child)) == child


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_a_single_paper_step_changes_at_most_one_node(seed):
    rng = np.random.default_rng(seed)
    g = random_genome(rng)
    child = mutate(g, rng, active=False)
    assert len(child.nodes) == len(g.nodes)
    assert sum(a != b for a, b in zip(g.nodes, child.nodes, strict=True)) <= 1


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 16))
def test_padding_keeps_the_function_and_fills_the_length(seed, size):
    rng = np.random.default_rng(seed)
    g = random_genome(rng)
    padded = pad(g, size, rng)
    assert padded.key == g.key
    assert len(padded.nodes) == max(size, len(g.nodes))


def _is_mutation_outcome(node, position, space=PAPER):
    """True when the paper's re-draw of node ``position`` can produce ``node``."""
    return node.op in {op.name for op in space.ops} and all(i < NUM_INPUTS + position for i in node.inputs)


@pytest.mark.parametrize("target", ["evonorm_b0", "evonorm_s0", "evonorm_b2", "bn_relu"])
def test_every_layer_is_reachable_from_a_one_node_lineage(target):
    """Fixed-length genomes: a 1-node graph padded to 10 nodes reaches any graph of at most 10
    nodes by single-node mutations (here: writing the target into the last positions)."""
    rng = np.random.default_rng(0)
    goal = zoo.get(target).canonical
    assert goal.live_nodes <= 10
    genome = pad(random_genome(rng, num_nodes=1), 10, rng)
    offset = 10 - len(goal.nodes)
    for k, node in enumerate(goal.nodes):
        moved = Node(node.op, tuple(i if i < NUM_INPUTS else i + offset for i in node.inputs))
        assert _is_mutation_outcome(moved, offset + k)
        genome = mutate_node(genome, offset + k, moved)
    assert genome.key == goal.key and len(genome.nodes) == 10


def test_mutation_draws_cover_the_whole_support_of_a_node():
    """Every op and every earlier input is a possible outcome of mutating a node (so the steps of
    the reachability test are draws mutation really makes)."""
    rng = np.random.default_rng(3)
    genome = pad(random_genome(rng, num_nodes=1), 4, rng)
    ops_seen, inputs_seen = set(), set()
    for _ in range(3000):
        child = mutate(genome, rng, active=False)
        changed = [k for k, (a, b) in enumerate(zip(genome.nodes, child.nodes, strict=True)) if a != b]
        if changed == [3]:
            ops_seen.add(child.nodes[3].op)
            inputs_seen.update(child.nodes[3].inputs)
    assert len(ops_seen) == 24 and inputs_seen == set(range(NUM_INPUTS + 3))


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


def test_repeated_mutation_takes_a_geometric_number_of_steps():
    def changed_nodes(parent, child):
        return sum(a != b for a, b in zip(parent.nodes, child.nodes, strict=True))

    rng = np.random.default_rng(0)
    parent = pad(zoo.get("evonorm_b0"), 10, rng)
    single = [changed_nodes(parent, mutate(parent, rng, step="point")) for _ in range(300)]
    repeated = [changed_nodes(parent, mutate(parent, rng, step="point", repeat=0.5)) for _ in range(300)]
    assert np.median(single) == 1  # one active step (neutral steps on dead nodes may precede it)
    assert np.mean(repeated) > np.mean(single) + 0.5  # mean 2 steps against 1
    assert sum(n >= 4 for n in repeated) > 5  # the tail of the geometric draw
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    assert mutate(parent, a, step="point") == mutate(parent, b, step="point", repeat=0.0)
    with pytest.raises(ValueError, match="repeat must be in"):
        mutate(parent, rng, repeat=1.0)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_insertion_and_deletion_change_the_live_size_by_small_steps(seed):
    rng = np.random.default_rng(seed)
    g = pad(random_genome(rng, num_nodes=int(rng.integers(1, 8))), 10, rng)
    grown = insert_step(g, rng)
    grown_on_edge = insert_edge_step(g, rng)
    shrunk = delete_step(g, rng)
    for child in (grown, grown_on_edge, shrunk):
        assert len(child.nodes) == 10 and Genome.parse(str(child)) == child
    # an insertion adds one or two nodes (fewer live ones only if the new node merges with an old one)
    assert g.live_nodes - 1 <= grown.live_nodes <= g.live_nodes + 2
    assert g.live_nodes - 1 <= grown_on_edge.live_nodes <= g.live_nodes + 2
    assert shrunk.live_nodes < g.live_nodes or g.live_nodes == 1  # a 1-node graph: a point mutation


def test_an_insertion_wraps_a_node_in_a_normaliser():
    """relu(x) -> relu(x) / std_group(x) in one step: the insertion reaches it (a point mutation
    needs a dead node that happens to be std_group(x))."""
    relu = Genome.parse("t1 = max(x, zero)")
    goal = Genome.parse("t1 = max(x, zero); t2 = std_group(x); t3 = div(t1, t2)").key
    rng = np.random.default_rng(0)
    hits = sum(insert_step(relu, rng).key == goal for _ in range(20_000))
    # P = P(div) * P(new node) * P(std_group among 20 one-input ops) * P(its input is x) * P(order)
    expected = 20_000 * (1 / 24) * 0.5 * (1 / 20) * (1 / 5) * 0.5
    assert 0.5 * expected < hits < 2 * expected


def test_an_edge_insertion_puts_a_normaliser_under_an_activation():
    """tanh(x) -> tanh(x / std_batch(x)) in one step, which wrapping a node cannot do (it only
    puts the new node over tanh)."""
    tanh = Genome.parse("t1 = tanh(x)")
    rng = np.random.default_rng(0)
    children = [insert_edge_step(tanh, rng).canonical for _ in range(2_000)]
    kept = Node("tanh", (0,))  # tanh(x) itself, which an insertion under tanh replaces
    under = sum(c.nodes[-1].op == "tanh" and kept not in c.nodes for c in children)
    assert 0.4 < under / len(children) < 0.6  # tanh's edge is one of two (the output's is the other)
    assert all(kept in insert_step(tanh, rng).canonical.nodes for _ in range(500))
    # the normaliser itself: P = 1/2 (the edge) * 1/24 (div) * 1/2 (a new node) * 1/20 (std_batch)
    # * 1/4 (it reads x) * 1/2 (order) = 1/7680 per draw
    goal = Genome.from_expression("tanh(div(x, std_batch(x)))").key
    assert any(insert_edge_step(tanh, rng).key == goal for _ in range(100_000))


def test_an_edge_insertion_changes_one_reader_only():
    g = Genome.from_expression("mul(x, tanh(x))")
    rng = np.random.default_rng(1)
    seen = {insert_edge_step(g, rng).canonical.expression() for _ in range(3_000)}
    assert "mul(x, tanh(neg(x)))" in seen  # tanh's x edge
    assert "mul(neg(x), tanh(x))" in seen  # mul's x edge
    assert "neg(mul(x, tanh(x)))" in seen  # the output's edge
    assert "mul(neg(x), tanh(neg(x)))" not in seen  # both readers of x: two insertions


def test_a_deletion_bypasses_a_node():
    s1 = Genome.parse("t1 = sigmoid(x); t2 = mul(x, t1); t3 = std_group(x); t4 = div(t2, t3)")
    rng = np.random.default_rng(0)
    seen = {delete_step(s1, rng).canonical.expression() for _ in range(400)}
    assert "div(x, std_group(x))" in seen  # mul(x, sigmoid(x)) bypassed to x
    assert "std_group(x)" in seen  # the output replaced by the node it read
    assert "div(mul(x, x), std_group(x))" in seen  # sigmoid(x) bypassed to x


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_crossover_children_are_valid_full_length_genomes(seed):
    rng = np.random.default_rng(seed)
    a, b = (pad(random_genome(rng), 10, rng) for _ in range(2))
    child = crossover_step(a, b, rng)
    assert len(child.nodes) == 10 and Genome.parse(str(child)) == child


def test_crossover_grafts_a_donor_subgraph_in_place_of_a_node():
    """relu(tanh(x)) and x / std_group(x) meet in one step: relu(x / std_group(x))."""
    rng = np.random.default_rng(0)
    norm = Genome.from_expression("div(x, std_group(x))")
    relu = Genome.from_expression("max(x, zero)")
    # a one-node layer: replacing its only node takes a whole donor subgraph
    assert {crossover_step(relu, norm, rng).expression() for _ in range(400)} == {"div(x, std_group(x))",
                                                                                 "std_group(x)"}
    chain = Genome.from_expression("max(tanh(x), zero)")
    seen = {crossover_step(chain, norm, rng).expression() for _ in range(400)}
    assert seen == {"max(div(x, std_group(x)), zero)", "max(std_group(x), zero)",  # tanh(x) replaced
                    "div(x, std_group(x))", "std_group(x)"}  # the output replaced


def test_a_graft_that_does_not_fit_falls_back_to_a_point_mutation():
    chain = Genome.from_expression("tanh(" * 9 + "x" + ")" * 9)  # 9 nodes
    rng = np.random.default_rng(1)
    children = [crossover_step(chain, chain, rng) for _ in range(200)]
    assert all(c.live_nodes <= 10 for c in children)
    # grafting the 9-node chain in place of its first node would need 17 nodes: a point mutation
    # (one node changed, the length kept) is returned instead
    assert any(c.live_nodes >= 8 and "tanh(" * 9 not in c.expression() and c.key != chain.key for c in children)
