"""A genome as a formula, in plain text or LaTeX, derived from the op table's formats."""

from __future__ import annotations

from gp import ops
from gp.genome import NUM_INPUTS, Genome


def formula(genome: Genome, *, latex: bool = False) -> str:
    """The live graph as one formula, e.g. ``x·σ(v1·x) / std_group(x)``.

    Shared sub-expressions are written out where they are used. ``add(a, neg(b))`` prints as
    ``a - b``.
    """
    leaves = ops.INPUT_LATEX if latex else ops.INPUT_TEXT
    memo: dict[int, tuple[str, int]] = {}

    def fmt(op: ops.Op) -> ops.Format:
        return op.latex if latex else op.text

    def write(i: int) -> tuple[str, int]:
        """(text, precedence) of node i."""
        if i < NUM_INPUTS:
            return leaves[ops.INPUTS[i]], ops.ATOM
        if i in memo:
            return memo[i]
        node = genome.node(i)
        op = ops.OPS[node.op]
        form = fmt(op)
        if node.op == "add" and node.inputs[1] >= NUM_INPUTS and genome.node(node.inputs[1]).op == "neg":
            # a + -b reads better as a - b; same precedence as add, right side must bind tighter
            left = _wrap(*write(node.inputs[0]), need=form.prec)
            right = _wrap(*write(genome.node(node.inputs[1]).inputs[0]), need=form.prec + 1)
            memo[i] = (f"{left} - {right}", form.prec)
            return memo[i]
        args = []
        for pos, a in enumerate(node.inputs):
            text, prec = write(a)
            if not form.wraps:
                # left operand may bind as tightly as the op; right one (or a unary operand) tighter,
                # unless the op is associative
                need = form.prec if (pos == 0 and op.arity == 2) or form.associative else form.prec + 1
                text = _wrap(text, prec, need)
            args.append(text)
        memo[i] = (form.template.format(*args), form.prec)
        return memo[i]

    return write(genome.output)[0]


def _wrap(text: str, prec: int, need: int) -> str:
    return text if prec >= need else f"({text})"
