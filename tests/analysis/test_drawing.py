"""Layer drawings without Graphviz: every edge visible, none through a box, operands labelled."""

import numpy as np
import pytest

from analysis.drawing import OUTPUT, commutative, dot_source, draw_graph, layout
from gp import OPS, Genome, random_genome, zoo


def _inside_any_box(drawing, samples: int = 40):
    """(edge, point, box) for the first sampled edge point strictly inside a box, or None."""
    for e in drawing.edges:
        for (x0, y0), (x1, y1) in zip(e.points, e.points[1:], strict=False):
            for t in np.linspace(0, 1, samples):
                px, py = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
                for b in drawing.boxes:
                    if b.contains(px, py, eps=1e-6):
                        return e, (px, py), b
    return None


def test_shared_input_draws_both_edges(tmp_path):
    g = Genome.from_expression("mul(x, x)")
    d = layout(g)
    into_mul = [e for e in d.edges if e.target != OUTPUT]
    assert [(e.source, e.operand) for e in into_mul] == [(0, 0), (0, 1)]
    assert into_mul[0].points[-1] != into_mul[1].points[-1]  # two ports, two arrowheads
    assert into_mul[0].points[-2:] != into_mul[1].points[-2:]
    path = draw_graph(g, tmp_path / "mul.png", engine="matplotlib")
    assert path.stat().st_size > 1000


@pytest.mark.parametrize("seed", range(40))
def test_no_edge_runs_through_a_box(seed):
    g = random_genome(np.random.default_rng(seed))
    assert _inside_any_box(layout(g)) is None


@pytest.mark.parametrize("name", ["bn_relu", "evonorm_b0", "evonorm_b1", "evonorm_s0", "evonorm_s2"])
def test_zoo_layers_draw_cleanly(name, tmp_path):
    d = layout(zoo.get(name))
    assert _inside_any_box(d) is None
    draw_graph(zoo.get(name), tmp_path / f"{name}.png", engine="matplotlib")


def test_each_edge_ends_on_its_own_target_box():
    d = layout(zoo.get("evonorm_b0"))
    boxes = {b.index: b for b in d.boxes}
    for e in d.edges:
        (sx, sy), (tx, ty) = e.points[0], e.points[-1]
        src, dst = boxes[e.source], boxes[e.target]
        assert sx == pytest.approx(src.x + src.w / 2) and abs(sy - src.y) < src.h / 2
        assert tx == pytest.approx(dst.x - dst.w / 2) and abs(ty - dst.y) < dst.h / 2
        assert e.points[-2][1] == ty  # the last run is level: the arrow points into the box


def test_non_commutative_operands_are_labelled():
    g = Genome.from_expression("max(div(std_layer(x), x), zero)")
    d = layout(g)
    c = g.canonical
    div = next(i for i in range(4, 4 + len(c.nodes)) if not commutative(c.node(i).op))
    labels = {e.operand: e.label for e in d.edges if e.target == div}
    assert labels == {0: "a", 1: "b"}
    assert all(e.label is None for e in d.edges if e.target != div)  # max is commutative: no labels
    assert next(b.label for b in d.boxes if b.index == div).endswith("a / b")
    src = {e.label: e.source for e in d.edges if e.target == div}
    assert c.node(div).inputs == (src["a"], src["b"])
    assert 'headlabel="a"' in dot_source(g) and 'headlabel="b"' in dot_source(g)


def test_commutativity_comes_from_the_op_functions():
    binary = {n for n, op in OPS.items() if op.arity == 2}
    assert {n for n in binary if not commutative(n)} == {"div"}


def test_unknown_engine_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="engine must be"):
        draw_graph(zoo.get("bn_relu"), tmp_path / "x.png", engine="svg")
