import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gp import Genome, GenomeError, Node, ops
from gp.genome import NUM_INPUTS

OP_NAMES = list(ops.OPS)


@st.composite
def genomes(draw, max_nodes=12):
    n = draw(st.integers(1, max_nodes))
    nodes = []
    for k in range(n):
        op = ops.OPS[draw(st.sampled_from(OP_NAMES))]
        inputs = tuple(draw(st.integers(0, NUM_INPUTS + k - 1)) for _ in range(op.arity))
        nodes.append(Node(op.name, inputs))
    return Genome(tuple(nodes))


@settings(max_examples=200, deadline=None)
@given(genomes())
def test_text_round_trips(g):
    assert Genome.parse(str(g)) == g
    assert Genome.from_expression(g.expression()).key == g.key


@settings(max_examples=200, deadline=None)
@given(genomes(), st.data())
def test_key_ignores_dead_nodes(g, data):
    # insert an unused node at a random place; later references shift by one
    pos = data.draw(st.integers(0, len(g.nodes) - 1))
    dead = Node("exp", (data.draw(st.integers(0, NUM_INPUTS + pos - 1)),))
    shift = lambda i: i + 1 if i >= NUM_INPUTS + pos else i  # noqa: E731
    nodes = list(g.nodes[:pos]) + [dead] + [Node(n.op, tuple(map(shift, n.inputs))) for n in g.nodes[pos:]]
    g2 = Genome(tuple(nodes))
    assert g2 != g
    assert g2.key == g.key
    assert g2.live_nodes == g.live_nodes


def test_key_ignores_numbering():
    a = Genome.parse("t1 = sigmoid(x); t2 = std_group(x); t3 = div(t1, t2)")
    b = Genome.parse("t1 = std_group(x); t2 = sigmoid(x); t3 = div(t2, t1)")
    assert a != b and a.key == b.key


def test_key_distinguishes_argument_order():
    assert Genome.from_expression("div(x, v1)").key != Genome.from_expression("div(v1, x)").key


def test_expression_merges_common_subexpressions():
    g = Genome.from_expression("mul(sigmoid(x), sigmoid(x))")
    assert str(g) == "t1 = sigmoid(x); t2 = mul(t1, t1)"
    assert Genome.from_expression("max(x, 0)") == Genome.from_expression("max(x, zero)")


@pytest.mark.parametrize("text, fragment", [
    ("", "empty genome"),
    ("t1 = foo(x)", "unknown op 'foo'"),
    ("t1 = add(x)", "add takes 2 argument(s), got 1"),
    ("t1 = neg(t1)", "'t1' is not an input or an earlier node"),
    ("t1 = neg(x); t3 = neg(t1)", "assigns 't3', expected 't2'"),
    ("t1 = neg(x) t2", "statement 1"),
    ("t1 = neg(y)", "'y' is not an input"),
    ("t1 = neg(__import__('os'))", "expected 'tK = op(arg, ...)'"),
])
def test_malformed_genome_text(text, fragment):
    with pytest.raises(GenomeError, match=None) as err:
        Genome.parse(text)
    assert fragment in str(err.value)
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize("text, fragment", [
    ("", "empty expression"),
    ("x", "bare input"),
    ("div(x, foo(x))", "unknown name 'foo'"),
    ("div(x)", "div takes 2 argument(s), got 1"),
    ("neg(x", "expected ')'"),
    ("neg(x))", "unexpected ')'"),
    ("neg(x) + x", "column 8"),
    ("__import__('os').system('true')", "unknown name '__import__'"),
])
def test_malformed_expression(text, fragment):
    with pytest.raises(GenomeError) as err:
        Genome.from_expression(text)
    assert fragment in str(err.value)


def test_node_validation_names_position_and_expectation():
    with pytest.raises(GenomeError, match="node t2: reads t2"):
        Genome((Node("neg", (0,)), Node("neg", (5,))))
    with pytest.raises(GenomeError, match="empty graph"):
        Genome(())
    with pytest.raises(GenomeError, match="over the limit"):
        Genome(tuple(Node("neg", (0,)) for _ in range(300)))


def test_genome_is_immutable_and_hashable():
    g = Genome.from_expression("neg(x)")
    with pytest.raises(AttributeError):
        g.nodes = ()
    assert len({g, Genome.parse(str(g))}) == 1


def test_live_and_batch_dependence():
    g = Genome.parse("t1 = std_batch(x); t2 = sigmoid(x); t3 = mul(t2, x)")
    assert g.live_nodes == 2 and not g.uses_batch and g.reads_x
    assert not Genome.from_expression("add(v0, v1)").reads_x
