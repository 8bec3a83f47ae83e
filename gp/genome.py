"""The DAG genome (the paper's form): an immutable sequence of op nodes over four inputs.

Node indices: 0..3 are the inputs ``x, zero, v0, v1`` (:data:`gp.ops.INPUTS`); intermediate node
``k`` (1-based, printed ``tk``) has index ``3 + k`` and may read any earlier index. The last node
is the output. Dead nodes (not reachable from the output) are kept: mutation may revive them.

Text form, one node per statement, ``;`` or newlines between them::

    t1 = mul(v1, x); t2 = sigmoid(t1); t3 = mul(x, t2); t4 = std_group(x); t5 = div(t3, t4)

``Genome.parse(str(g)) == g`` for every genome. :meth:`Genome.from_expression` reads the DEAP-style
nested form ``div(mul(x, sigmoid(mul(v1, x))), std_group(x))``. Neither parser ever evaluates text.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cached_property

from gp import ops

MAX_NODES = 256
"""Hard limit on intermediate nodes of any genome (the paper's generator uses 10; trees
converted from DEAP may be larger)."""

NUM_INPUTS = len(ops.INPUTS)


class GenomeError(ValueError):
    """A genome or expression text, or a node list, that is not a valid layer graph."""


@dataclass(frozen=True)
class Node:
    op: str
    inputs: tuple[int, ...]


def _node_name(index: int) -> str:
    return ops.INPUTS[index] if index < NUM_INPUTS else f"t{index - NUM_INPUTS + 1}"


@dataclass(frozen=True)
class Genome:
    """A layer graph. Construct from nodes (validated), :meth:`parse` or :meth:`from_expression`."""

    nodes: tuple[Node, ...]

    def __post_init__(self) -> None:
        nodes = tuple(n if isinstance(n, Node) else Node(n[0], tuple(n[1])) for n in self.nodes)
        object.__setattr__(self, "nodes", nodes)
        _validate(nodes)

    # -- text forms ------------------------------------------------------------------------

    def __str__(self) -> str:
        return "; ".join(
            f"{_node_name(NUM_INPUTS + k)} = {n.op}({', '.join(_node_name(i) for i in n.inputs)})"
            for k, n in enumerate(self.nodes)
        )

    def __repr__(self) -> str:
        return f"Genome.parse({str(self)!r})"

    @classmethod
    def parse(cls, text: str) -> Genome:
        """Read the canonical text form; raises :class:`GenomeError` naming the bad statement."""
        statements = [s.strip() for s in re.split(r"[;\n]", text) if s.strip()]
        if not statements:
            raise GenomeError("empty genome text: expected statements like 't1 = mul(v1, x)'")
        names = {name: i for i, name in enumerate(ops.INPUTS)}
        nodes = []
        for pos, statement in enumerate(statements, start=1):
            m = re.fullmatch(r"(\w+)\s*=\s*(\w+)\s*\(([^()]*)\)", statement)
            if not m:
                raise GenomeError(f"statement {pos} {statement!r}: expected 'tK = op(arg, ...)'")
            target, op_name, arg_text = m.groups()
            expected = _node_name(NUM_INPUTS + pos - 1)
            if target != expected:
                raise GenomeError(f"statement {pos} {statement!r}: assigns {target!r}, expected {expected!r} "
                                  "(nodes are numbered t1, t2, ... in order)")
            args = [a.strip() for a in arg_text.split(",")] if arg_text.strip() else []
            inputs = []
            for a in args:
                if a not in names:
                    raise GenomeError(f"statement {pos} {statement!r}: {a!r} is not an input or an earlier "
                                      f"node; valid here: {', '.join(names)}")
                inputs.append(names[a])
            _check_node(pos, op_name, len(inputs))
            nodes.append(Node(op_name, tuple(inputs)))
            names[target] = NUM_INPUTS + pos - 1
        return cls(tuple(nodes))

    @classmethod
    def from_expression(cls, text: str) -> Genome:
        """Read a nested expression such as ``max(div(x, std_batch(x)), zero)``.

        Repeated sub-expressions become one node. The constant may be written ``zero`` or ``0``.
        """
        return cls(_ExpressionParser(text).parse())

    # -- structure -------------------------------------------------------------------------

    @property
    def output(self) -> int:
        return NUM_INPUTS + len(self.nodes) - 1

    def node(self, index: int) -> Node:
        return self.nodes[index - NUM_INPUTS]

    @cached_property
    def live(self) -> frozenset[int]:
        """Indices (inputs included) that the output depends on structurally."""
        seen: set[int] = set()
        stack = [self.output]
        while stack:
            i = stack.pop()
            if i in seen:
                continue
            seen.add(i)
            if i >= NUM_INPUTS:
                stack.extend(self.node(i).inputs)
        return frozenset(seen)

    @property
    def live_nodes(self) -> int:
        """How many intermediate nodes the output depends on."""
        return sum(1 for i in self.live if i >= NUM_INPUTS)

    @property
    def uses_batch(self) -> bool:
        """True when a live node needs batch statistics."""
        return any(ops.OPS[self.node(i).op].uses_batch for i in self.live if i >= NUM_INPUTS)

    @property
    def reads_x(self) -> bool:
        """True when the input x is structurally reachable from the output."""
        return 0 in self.live

    @cached_property
    def canonical(self) -> Genome:
        """The same function with dead nodes removed, repeated sub-expressions merged and nodes
        numbered in depth-first order from the output (arguments left to right)."""
        new_index: dict[int, int] = {i: i for i in range(NUM_INPUTS)}
        seen: dict[Node, int] = {}
        nodes: list[Node] = []

        def visit(i: int) -> int:
            if i in new_index:
                return new_index[i]
            # iterative post-order keeps deep trees from hitting the recursion limit
            stack = [(i, False)]
            while stack:
                j, expanded = stack.pop()
                if j in new_index:
                    continue
                n = self.node(j)
                if not expanded:
                    stack.append((j, True))
                    stack.extend((a, False) for a in reversed(n.inputs) if a not in new_index)
                    continue
                merged = Node(n.op, tuple(new_index[a] for a in n.inputs))
                if merged not in seen:
                    seen[merged] = NUM_INPUTS + len(nodes)
                    nodes.append(merged)
                new_index[j] = seen[merged]
            return new_index[i]

        out = visit(self.output)
        if out < NUM_INPUTS:  # cannot happen: the output is an op node
            raise AssertionError("output resolved to an input")
        return Genome(tuple(nodes)) if tuple(nodes) != self.nodes else self

    @cached_property
    def key(self) -> str:
        """Stable identity of the live graph: dead nodes and numbering do not change it."""
        return hashlib.sha256(str(self.canonical).encode()).hexdigest()[:16]

    def expression(self) -> str:
        """The nested (DEAP-style) form of the live graph; shared nodes are written out again."""
        memo: dict[int, str] = {}

        def write(i: int) -> str:
            if i < NUM_INPUTS:
                return ops.INPUTS[i]
            if i not in memo:
                n = self.node(i)
                memo[i] = f"{n.op}({', '.join(write(a) for a in n.inputs)})"
            return memo[i]

        return write(self.output)


def _check_node(pos: int, op_name: str, arity: int) -> None:
    if op_name not in ops.OPS:
        raise GenomeError(f"node t{pos}: unknown op {op_name!r}; valid ops: {', '.join(ops.OPS)}")
    expected = ops.OPS[op_name].arity
    if arity != expected:
        raise GenomeError(f"node t{pos}: {op_name} takes {expected} argument(s), got {arity}")


def _validate(nodes: tuple[Node, ...]) -> None:
    if not nodes:
        raise GenomeError("empty graph: a genome needs at least one op node (the output)")
    if len(nodes) > MAX_NODES:
        raise GenomeError(f"graph has {len(nodes)} nodes, over the limit of {MAX_NODES}")
    for k, n in enumerate(nodes):
        pos = k + 1
        _check_node(pos, n.op, len(n.inputs))
        for a in n.inputs:
            if not isinstance(a, int) or a < 0:
                raise GenomeError(f"node t{pos}: input {a!r} is not a node index")
            if a >= NUM_INPUTS + k:
                raise GenomeError(f"node t{pos}: reads {_node_name(a)}, which is not an input or an earlier "
                                  f"node (valid: x, zero, v0, v1, t1..t{pos - 1})")


_TOKEN = re.compile(r"\s*(?:(\w+)|(.))")


class _ExpressionParser:
    """Recursive descent over ``name`` | ``op(expr, ...)``; common sub-expressions merged."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = [(m.start(m.lastindex), m.group(m.lastindex)) for m in _TOKEN.finditer(text) if m.group().strip()]
        self.pos = 0
        self.nodes: list[Node] = []
        self.index: dict[Node, int] = {}

    def fail(self, what: str) -> GenomeError:
        at = self.tokens[self.pos][0] if self.pos < len(self.tokens) else len(self.text)
        return GenomeError(f"expression {self.text!r}, column {at + 1}: {what}")

    def peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise self.fail(f"expected {expected or 'a name'!r}, found {tok or 'the end'!r}")
        self.pos += 1
        return tok

    def parse(self) -> tuple[Node, ...]:
        if not self.tokens:
            raise GenomeError("empty expression: expected e.g. 'max(div(x, std_batch(x)), zero)'")
        root = self.expr()
        if self.peek() is not None:
            raise self.fail(f"unexpected {self.peek()!r} after the end of the expression")
        if root < NUM_INPUTS:
            raise GenomeError(f"expression {self.text!r} is a bare input; a layer needs at least one op")
        if root != NUM_INPUTS + len(self.nodes) - 1:  # pragma: no cover - post-order guarantees it
            raise AssertionError("root is not the last node")
        return tuple(self.nodes)

    def expr(self) -> int:
        name = self.take()
        if name == "0":
            name = "zero"
        if name in ops.INPUTS:
            return ops.INPUTS.index(name)
        if name not in ops.OPS:
            raise GenomeError(f"expression {self.text!r}: unknown name {name!r}; valid: "
                              f"inputs {', '.join(ops.INPUTS)} or ops {', '.join(ops.OPS)}")
        self.take("(")
        args = [self.expr()]
        while self.peek() == ",":
            self.take(",")
            args.append(self.expr())
        self.take(")")
        arity = ops.OPS[name].arity
        if len(args) != arity:
            raise GenomeError(f"expression {self.text!r}: {name} takes {arity} argument(s), got {len(args)}")
        node = Node(name, tuple(args))
        if node not in self.index:
            self.index[node] = NUM_INPUTS + len(self.nodes)
            self.nodes.append(node)
        return self.index[node]
