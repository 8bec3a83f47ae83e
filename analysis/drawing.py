"""Drawings of a layer's graph that can be read without guessing.

The Graphviz-free drawing is a layered (Sugiyama-style) layout computed here, then rendered with
matplotlib; :func:`layout` returns the geometry so that tests can check it:

- a node sits in the column of its longest path from the inputs; an edge that spans several
  columns passes each one through a slot of its own (a "dummy" node), so it never crosses a box;
- every sloped part of an edge lies in the gap between two columns, where there are no boxes;
  inside a column's band an edge runs horizontally at its own slot's height, so no edge runs
  through another node;
- each operand of a binary op enters its own port (the one arriving from higher up, the upper
  port), so both edges of a shared input (``mul(x, x)``) are visible, and the operands of a
  non-commutative op are labelled ``a`` and ``b``, with the op's form (``a / b``) in its box.

Graphviz's ``dot``, where installed and asked for, draws the same graph with the same labels.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

from gp import ops  # noqa: E402
from gp.genome import NUM_INPUTS, Genome  # noqa: E402

OUTPUT = -1
"""Index of the drawn ``·γ + β`` box after the graph's output (the affine outside the search)."""
OUTPUT_LABEL = "·γ + β"
OPERANDS = "ab"  # operand names, as in the op table's docs ("a / b")

CHAR = 0.085  # width of a character of the 9-pt label font, in layout units
BOX_H = 0.5
ROW = 0.85  # vertical distance between slots
GAP = 0.9  # horizontal gap between column bands, where edges may slope
MARGIN = 0.12  # the shortest horizontal run into a box, so every arrowhead points into it
PORT = 0.13  # vertical offset of operand ports from a box's centre
INCH = 0.9  # inches per layout unit


@functools.cache
def commutative(op_name: str) -> bool:
    """Whether swapping a binary op's operands leaves its value unchanged, measured on the op
    table's function (so no op name is listed here)."""
    op = ops.OPS[op_name]
    if op.arity != 2:
        return True
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 64, generator=gen)
    return bool(torch.equal(op.fn(a, b), op.fn(b, a)))


def node_label(genome: Genome, i: int) -> str:
    if i == OUTPUT:
        return OUTPUT_LABEL
    if i < NUM_INPUTS:
        return ops.INPUT_TEXT[ops.INPUTS[i]]
    name = genome.node(i).op
    op = ops.OPS[name]
    if op.arity == 2 and not commutative(name):
        return f"{name}\n{op.text.template.format(*OPERANDS)}"
    return name


@dataclass(frozen=True)
class Box:
    index: int  # node index in the canonical genome; OUTPUT for the affine box
    label: str
    x: float  # centre
    y: float
    w: float
    h: float

    def contains(self, px: float, py: float, eps: float = 1e-9) -> bool:
        """Strictly inside (the border excluded)."""
        return abs(px - self.x) < self.w / 2 - eps and abs(py - self.y) < self.h / 2 - eps


@dataclass(frozen=True)
class Edge:
    source: int
    target: int
    operand: int  # position among the target's inputs
    label: str | None  # "a" / "b" for a non-commutative op's operands
    points: tuple[tuple[float, float], ...]  # polyline from the source box's border to the target's


@dataclass(frozen=True)
class Drawing:
    boxes: tuple[Box, ...]
    edges: tuple[Edge, ...]


def _edges(g: Genome) -> list[tuple[int, int, int]]:
    """(source, target, operand) of the live graph, and the output into the affine box."""
    live = sorted(g.live)
    out = [(a, i, k) for i in live if i >= NUM_INPUTS for k, a in enumerate(g.node(i).inputs)]
    return out + [(g.output, OUTPUT, 0)]


def _order(columns: list[list], preds: dict, succs: dict, sweeps: int = 4) -> None:
    """Barycentre ordering within columns, sweeping down then up, to reduce crossings."""
    def reorder(col: list, neighbours: dict, ref: list) -> None:
        rank = {n: k for k, n in enumerate(ref)}
        keyed = []
        for k, n in enumerate(col):
            near = [rank[m] for m in neighbours.get(n, ()) if m in rank]
            keyed.append((sum(near) / len(near) if near else k, k, n))
        col[:] = [n for _, _, n in sorted(keyed, key=lambda t: (t[0], t[1]))]

    for _ in range(sweeps):
        for d in range(1, len(columns)):
            reorder(columns[d], preds, columns[d - 1])
        for d in range(len(columns) - 2, -1, -1):
            reorder(columns[d], succs, columns[d + 1])


def layout(genome: Genome) -> Drawing:
    """The layered drawing of ``genome``'s live graph (canonical form); see the module doc."""
    g = genome.canonical
    edges = _edges(g)
    depth: dict[int, int] = {i: 0 for i in g.live if i < NUM_INPUTS}
    for i in sorted(i for i in g.live if i >= NUM_INPUTS):
        depth[i] = 1 + max(depth[a] for a in g.node(i).inputs)
    depth[OUTPUT] = depth[g.output] + 1
    ncols = depth[OUTPUT] + 1

    # columns of real nodes and of dummies; a dummy is ("d", edge number, column)
    columns: list[list] = [[] for _ in range(ncols)]
    for i in sorted(depth):
        if i != OUTPUT:
            columns[depth[i]].append(i)
    columns[-1].append(OUTPUT)
    preds: dict = {}
    succs: dict = {}
    chains: list[list] = []
    for e, (a, b, _) in enumerate(edges):
        chain = [a] + [("d", e, d) for d in range(depth[a] + 1, depth[b])] + [b]
        for d, dummy in zip(range(depth[a] + 1, depth[b]), chain[1:-1], strict=True):
            columns[d].append(dummy)
        for u, v in zip(chain, chain[1:], strict=False):
            succs.setdefault(u, []).append(v)
            preds.setdefault(v, []).append(u)
        chains.append(chain)
    _order(columns, preds, succs)

    labels = {i: node_label(g, i) for col in columns for i in col if not isinstance(i, tuple)}
    widths = {i: CHAR * max(len(line) for line in text.split("\n")) + 0.3 for i, text in labels.items()}
    heights = {i: BOX_H + 0.22 * text.count("\n") for i, text in labels.items()}
    band = max(widths.values()) + 2 * MARGIN  # every column's band: the widest box and a margin
    step = band + GAP
    pos = {}
    for d, col in enumerate(columns):
        for k, n in enumerate(col):
            pos[n] = (d * step, ((len(col) - 1) / 2 - k) * ROW)
    boxes = tuple(Box(i, labels[i], *pos[i], widths[i], heights[i]) for i in labels)

    # the operand arriving from higher up takes the upper port, so operands never cross at a box
    arriving = {(b, k): pos[chain[-2]][1] for (_, b, k), chain in zip(edges, chains, strict=True)}
    upper = {b: 0 if arriving[(b, 0)] >= arriving[(b, 1)] else 1 for b, k in arriving if k == 1}
    drawn = []
    for (a, b, k), chain in zip(edges, chains, strict=True):
        xa, ya = pos[a]
        xb, yb = pos[b]
        arity = ops.OPS[g.node(b).op].arity if b != OUTPUT else 1
        port = yb + (PORT * (1 if k == upper[b] else -1) if arity == 2 else 0.0)
        pts = [(xa + widths[a] / 2, ya), (xa + band / 2, ya)]  # out of the source, level to its band's edge
        for dummy in chain[1:-1]:
            x, y = pos[dummy]
            pts += [(x - band / 2, y), (x + band / 2, y)]  # across a column at the dummy's own slot
        pts += [(xb - band / 2, port), (xb - widths[b] / 2, port)]  # level into the target's port
        label = OPERANDS[k] if arity == 2 and not commutative(g.node(b).op) else None
        drawn.append(Edge(a, b, k, label, tuple(pts)))
    return Drawing(boxes, tuple(drawn))


def render(drawing: Drawing, path: Path) -> Path:
    """The drawing as a PNG, to scale (INCH inches per layout unit), so the geometry holds."""
    xs = [b.x for b in drawing.boxes]
    ys = [b.y for b in drawing.boxes] + [y for e in drawing.edges for _, y in e.points]
    half_w = max(b.w for b in drawing.boxes) / 2 + MARGIN
    x0, x1 = min(xs) - half_w - 0.1, max(xs) + half_w + 0.1
    y0, y1 = min(ys) - 0.6, max(ys) + 0.6
    fig = plt.figure(figsize=((x1 - x0) * INCH, (y1 - y0) * INCH))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.axis("off")
    for e in drawing.edges:
        px, py = zip(*e.points, strict=True)
        ax.plot(px[:-1], py[:-1], color="dimgray", lw=1.0, solid_joinstyle="round", zorder=1)
        ax.annotate("", xy=e.points[-1], xytext=e.points[-2], zorder=1,
                    arrowprops={"arrowstyle": "-|>", "color": "dimgray", "lw": 1.0, "shrinkA": 0, "shrinkB": 0,
                                "mutation_scale": 9})
        if e.label:
            x, y = e.points[-2]
            ax.text(x, y + 0.03, e.label, fontsize=8, color="crimson", ha="left", va="bottom", style="italic")
    for b in drawing.boxes:
        face = "lightyellow" if 0 <= b.index < NUM_INPUTS else ("white" if b.index == OUTPUT else "lightblue")
        ax.add_patch(FancyBboxPatch((b.x - b.w / 2, b.y - b.h / 2), b.w, b.h, boxstyle="round,pad=0,rounding_size=0.08",
                                    fc=face, ec="gray", zorder=2))
        ax.text(b.x, b.y, b.label, ha="center", va="center", fontsize=9, zorder=3, linespacing=1.1)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def dot_source(genome: Genome) -> str:
    """The graph in Graphviz's language, with the same labels as the matplotlib drawing."""
    g = genome.canonical
    lines = ["digraph layer {", "rankdir=LR; node [shape=box, style=rounded, fontname=Helvetica];",
             "edge [fontcolor=crimson, fontsize=10];"]
    for i in sorted(g.live):
        shape = ", shape=ellipse" if i < NUM_INPUTS else ""
        lines.append(f'n{i} [label="{node_label(g, i)}"{shape}];'.replace("\n", "\\n"))
    for a, b, k in _edges(g):
        if b == OUTPUT:
            lines.append(f'n{a} -> out; out [shape=plaintext, label="{OUTPUT_LABEL}"];')
            continue
        op = g.node(b).op
        label = f' [headlabel="{OPERANDS[k]}"]' if ops.OPS[op].arity == 2 and not commutative(op) else ""
        lines.append(f"n{a} -> n{b}{label};")
    return "\n".join(lines + ["}"])


def draw_graph(genome: Genome, path: Path, *, engine: str = "auto") -> Path:
    """Draw ``genome``'s live graph into the PNG ``path``: ``engine`` "dot" (Graphviz), "matplotlib"
    (no dependency), or "auto" (dot when installed)."""
    if engine not in ("auto", "dot", "matplotlib"):
        raise ValueError(f"engine must be auto, dot or matplotlib, got {engine!r}")
    if engine == "dot" or (engine == "auto" and shutil.which("dot")):
        subprocess.run(["dot", "-Tpng", "-o", str(path)], input=dot_source(genome), text=True, check=True)
        return path
    return render(layout(genome), Path(path))
