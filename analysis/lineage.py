"""Where a layer came from: its chain of parents back to a random (or seeded) genome, with the node
each mutation changed and the score it gained or lost, read from a search's records alone.

A record names its parent by key (the tournament winner it mutates). The parent is the earliest
evaluated record with that key before the child; a duplicate was never in the window, so it is
never a parent. The mutation is the node-by-node difference between the parent's genome text and
the child's: the changed nodes that the child's (or the parent's) output reads are the mutation
that mattered; changed nodes that neither reads are neutral drift (see ``gp.variation``), counted
apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from gp import ops  # noqa: E402
from gp.genome import NUM_INPUTS, Genome, Node  # noqa: E402
from gp.search import Record  # noqa: E402


@dataclass(frozen=True)
class Step:
    """One mutation: ``parent`` (None for a genome drawn at random or seeded) gave ``child``."""

    child: Record
    parent: Record | None
    changes: tuple[str, ...]  # changed live nodes, "t7: add(t3, x) -> max(t3, 0)"
    neutral: int  # changed nodes that neither output reads

    @property
    def delta(self) -> float | None:
        """Change of mean score from parent to child; None where either has no score."""
        if self.parent is None or self.parent.objectives is None or self.child.objectives is None:
            return None
        return self.child.mean - self.parent.mean


def _name(i: int) -> str:
    return ops.INPUT_TEXT[ops.INPUTS[i]] if i < NUM_INPUTS else f"t{i - NUM_INPUTS + 1}"


def _node_text(n: Node) -> str:
    return f"{n.op}({', '.join(_name(i) for i in n.inputs)})"


def mutation(parent: Genome, child: Genome) -> tuple[tuple[str, ...], int]:
    """(live changes, number of dead changes) from ``parent`` to ``child``, node by node.

    Genomes of different lengths (a search without fixed-length genomes) are compared by their
    outputs' whole expressions instead."""
    if len(parent.nodes) != len(child.nodes):
        return (f"graph re-drawn: {parent.expression()} -> {child.expression()}",), 0
    live, dead = [], 0
    for k, (p, c) in enumerate(zip(parent.nodes, child.nodes, strict=True)):
        if p == c:
            continue
        i = NUM_INPUTS + k
        if i in child.live or i in parent.live:
            live.append(f"{_name(i)}: {_node_text(p)} -> {_node_text(c)}")
        else:
            dead += 1
    return tuple(live), dead


def parent_of(records: list[Record], child: Record) -> Record | None:
    if child.parent is None:
        return None
    return next((r for r in records if r.key == child.parent and r.evaluated and r.ordinal < child.ordinal), None)


def lineage(records: list[Record], record: Record, *, limit: int = 1000) -> list[Step]:
    """The steps that led to ``record``, oldest first (the first step has no parent)."""
    steps, seen, current = [], set(), record
    while current is not None and current.ordinal not in seen and len(steps) < limit:
        seen.add(current.ordinal)
        parent = parent_of(records, current)
        changes, neutral = mutation(Genome.parse(parent.genome), Genome.parse(current.genome)) if parent else ((), 0)
        steps.append(Step(current, parent, changes, neutral))
        current = parent
    return steps[::-1]


def short(step: Step) -> str:
    """A few characters for an edge of the drawing: the changed node's new op and the score change."""
    if not step.changes:
        return ""
    head = step.changes[0].split(":")[0] + " " + step.changes[0].split("-> ")[-1].split("(")[0]
    more = f" +{len(step.changes) - 1}" if len(step.changes) > 1 else ""
    d = step.delta
    return head + more + (f"\n{d:+.3f}" if d is not None else "")


def plot(records: list[Record], top: list[Record], path: Path) -> Path:
    """The top layers' ancestries on one chart: candidate number across, mean score up, an arrow
    from parent to child labelled with the changed node and the score change; candidates without
    a score (rejected, failed) on a band below the axis."""
    chains = [lineage(records, r) for r in top]
    members = {s.child.ordinal: s.child for chain in chains for s in chain}
    scores = [r.mean for r in members.values() if r.objectives is not None]
    lo = min(scores) if scores else 0.0
    hi = max(scores) if scores else 1.0
    floor = lo - 0.12 * max(hi - lo, 0.05)

    def y(r: Record) -> float:
        return r.mean if r.objectives is not None and math.isfinite(r.mean) else floor

    fig, ax = plt.subplots(figsize=(9, 5.5))
    drawn = set()
    for chain in chains:
        for s in chain:
            if s.parent is None or (s.parent.ordinal, s.child.ordinal) in drawn:
                continue
            drawn.add((s.parent.ordinal, s.child.ordinal))
            a, b = (s.parent.ordinal, y(s.parent)), (s.child.ordinal, y(s.child))
            ax.annotate("", xy=b, xytext=a, arrowprops={"arrowstyle": "-|>", "color": "gray", "lw": 0.9,
                                                        "shrinkA": 4, "shrinkB": 4})
            text = short(s)
            if text:
                ax.text((a[0] + b[0]) / 2, (a[1] + b[1]) / 2, text, fontsize=6.5, ha="center", va="center",
                        color="dimgray", bbox={"fc": "white", "ec": "none", "alpha": 0.8, "pad": 0.5})
    roots = [r for r in members.values() if r.parent is None]
    rest = [r for r in members.values() if r.parent is not None]
    ax.scatter([r.ordinal for r in rest], [y(r) for r in rest], s=22, color="steelblue", zorder=3,
               label="ancestor (mutated)")
    ax.scatter([r.ordinal for r in roots], [y(r) for r in roots], s=30, marker="s", color="darkorange", zorder=3,
               label="root (random or seeded)")
    for rank, r in enumerate(top, 1):
        ax.scatter([r.ordinal], [y(r)], s=70, facecolor="none", edgecolor="crimson", lw=1.5, zorder=4,
                   label="top layer (#rank)" if rank == 1 else None)
        ax.annotate(f"#{rank}", (r.ordinal, y(r)), xytext=(5, 5), textcoords="offset points", fontsize=8,
                    color="crimson")
    if any(r.objectives is None for r in members.values()):
        ax.axhline(floor, color="lightgray", ls=":", lw=1)
        ax.text(ax.get_xlim()[0], floor, " no score (rejected / failed)", fontsize=7, va="bottom", color="gray")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("candidate number (order of evaluation)")
    ax.set_ylabel("mean validation accuracy over anchors")
    ax.set_title("Lineage of the top layers: parent -> child, changed node and score change")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)  # off the points
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
