"""The op table: the one place where the search space's primitives are declared.

Each :class:`Op` carries its name, arity, torch function, printed forms and whether it
aggregates over the batch. The DEAP primitive set, the genome validator, the compiler, the
pretty-printer, the CLI and the tests all derive from :data:`OPS`; an op's name appears nowhere
else in the code.

Guards (every element-wise op is defined on all reals; only overflow is left to the rejection
protocols, as the paper intends):

- ``div(a, b)`` = a / b', where b' = b when |b| >= GUARD_EPS and b' = ±GUARD_EPS (sign of b, + at 0)
  otherwise;
- ``log(a)`` = sign(a)·ln(max(|a|, GUARD_EPS)), 0 at a = 0;
- ``sqrt(a)`` = sign(a)·sqrt(max(|a|, GUARD_EPS)), 0 at a = 0 with a finite gradient.

Each guard is exact wherever |input| >= GUARD_EPS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from gp import stats

GUARD_EPS = 1e-6
"""Smallest magnitude a divisor, or the argument of ``log`` and ``sqrt``, is taken to have."""

INPUTS = ("x", "zero", "v0", "v1")
"""The paper's initial nodes, in graph order: the input, the constant 0 and two trainable
per-channel vectors (``v0`` initialised to 0, ``v1`` to 1)."""

INPUT_TEXT = {"x": "x", "zero": "0", "v0": "v0", "v1": "v1"}
INPUT_LATEX = {"x": "x", "zero": "0", "v0": "v_0", "v1": "v_1"}

ATOM = 9
"""Printing precedence of a form that never needs parentheses."""


@dataclass(frozen=True)
class Format:
    """One printed form of an op: a ``str.format`` template over its arguments.

    ``prec`` is how tightly the form binds; ``wraps`` says that the template already delimits its
    arguments (``f(a, b)``, ``\\frac{a}{b}``), so they never need parentheses.
    """

    template: str
    prec: int = ATOM
    wraps: bool = True
    associative: bool = False


@dataclass(frozen=True)
class Op:
    """One primitive. ``code`` is the op as PyTorch source, a ``str.format`` template over its
    arguments' variable names; ``helpers`` are the module-level functions that source calls, copied
    verbatim into exported layers (``gp/export.py``), so export and compiler share one definition."""

    name: str
    arity: int
    fn: Callable[..., torch.Tensor]
    text: Format
    latex: Format
    doc: str
    code: str
    index_set: str | None = None  # the aggregated index set; None for element-wise ops
    statistic: str | None = None  # "mean" | "sqmean" | "std" for aggregates
    can_overflow: bool = False  # may give inf on large finite inputs (left to rejection)
    helpers: tuple[Callable[..., torch.Tensor], ...] = ()

    @property
    def is_aggregate(self) -> bool:
        return self.index_set is not None

    @property
    def uses_batch(self) -> bool:
        """True when the op needs batch statistics (and a running estimate at inference)."""
        return self.index_set == "batch"


# --- element-wise functions (module level, so DEAP trees of them pickle) --------------------


def add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a + b


def mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a * b


def guarded_divisor(b: torch.Tensor) -> torch.Tensor:
    """b where |b| >= GUARD_EPS, else ±GUARD_EPS with b's sign (+ at 0 and -0: ``b + 0.0`` turns -0
    into +0 and leaves every other value, NaN and infinities included, as it is)."""
    return torch.copysign(b.abs().clamp_min(GUARD_EPS), b + 0.0)


class GuardedDiv(torch.autograd.Function):
    """a / b with the divisor guarded, and the gradient of a guarded ``where``: b gets none where
    the guard replaced it. Arithmetic in both directions: ``where`` runs ten times slower than a
    multiplication on a CPU. The gradients are those of ``a / where(|b| < GUARD_EPS, ±GUARD_EPS,
    b)`` bit for bit wherever they are finite; the backward is made of differentiable operations,
    so double backward holds too."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(a, b)
        return a / guarded_divisor(b)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        a, b = ctx.saved_tensors
        safe = guarded_divisor(b)
        ga = g / safe if ctx.needs_input_grad[0] else None
        # torch's own formula for the divisor, -g * ((a / b) / b), kept where the guard did not act
        gb = (-g * ((a / safe) / safe)) * (b.abs() >= GUARD_EPS) if ctx.needs_input_grad[1] else None
        return ga, gb


def div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return GuardedDiv.apply(a, b)


class Maximum(torch.autograd.Function):
    """``torch.maximum`` whose backward is arithmetic: the weight of ``a``'s gradient is
    (1 + sign(a - b)) / 2, which is 1, 1/2 or 0 where a > b, a == b (a tie splits the gradient in
    halves) or a < b, and ``b``'s is one minus that. Wherever values and gradients are finite, both
    gradients equal ``torch.maximum``'s bit for bit; its own backward selects with ``where`` and
    ``masked_fill_``, kernels that on a CPU run ten times slower than a multiplication (both
    gradients: 0.76 ms against 0.07 ms on a 32x32x8x8 tensor, one thread). Made of differentiable
    operations, so double backward matches too."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(a, b)
        return torch.maximum(a, b)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        a, b = ctx.saved_tensors
        # the weight first: products take its memory format, which the inputs fix, not the incoming
        # gradient's, which depends on what read the output (the sum onto a broadcast input is then
        # in one order whoever the readers are)
        weight = (torch.sign(a - b) + 1) * 0.5
        ga = weight * g if ctx.needs_input_grad[0] else None
        gb = (1 - weight) * g if ctx.needs_input_grad[1] else None
        return ga, gb


def max(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # noqa: A001 - the op's public name
    return Maximum.apply(a, b)


def neg(a: torch.Tensor) -> torch.Tensor:
    return -a


def sigmoid(a: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(a)


def tanh(a: torch.Tensor) -> torch.Tensor:
    return torch.tanh(a)


def exp(a: torch.Tensor) -> torch.Tensor:
    return torch.exp(a)


def abs(a: torch.Tensor) -> torch.Tensor:  # noqa: A001 - the op's public name
    return torch.abs(a)


def square(a: torch.Tensor) -> torch.Tensor:
    return a * a


def log(a: torch.Tensor) -> torch.Tensor:
    return torch.sign(a) * torch.log(a.abs().clamp_min(GUARD_EPS))


def sqrt(a: torch.Tensor) -> torch.Tensor:
    return torch.sign(a) * torch.sqrt(a.abs().clamp_min(GUARD_EPS))


_ELEMENTWISE = (
    Op("add", 2, add, Format("{0} + {1}", 1, False, True), Format("{0} + {1}", 1, False, True), "a + b",
       code="{0} + {1}"),
    Op("mul", 2, mul, Format("{0}·{1}", 3, False, True), Format("{0} \\cdot {1}", 3, False, True), "a · b",
       code="{0} * {1}", can_overflow=True),
    Op("div", 2, div, Format("{0} / {1}", 3, False), Format("\\frac{{{0}}}{{{1}}}"), "a / b, divisor guarded",
       code="div({0}, {1})", can_overflow=True, helpers=(div,)),
    Op("max", 2, max, Format("max({0}, {1})"), Format("\\max({0}, {1})"), "element-wise maximum",
       code="torch.maximum({0}, {1})"),
    Op("neg", 1, neg, Format("-{0}", 2, False), Format("-{0}", 2, False), "-a", code="-{0}"),
    Op("sigmoid", 1, sigmoid, Format("σ({0})"), Format("\\sigma({0})"), "1 / (1 + exp(-a))",
       code="torch.sigmoid({0})"),
    Op("tanh", 1, tanh, Format("tanh({0})"), Format("\\tanh({0})"), "hyperbolic tangent", code="torch.tanh({0})"),
    Op("exp", 1, exp, Format("exp({0})"), Format("\\exp({0})"), "e^a, unguarded", code="torch.exp({0})",
       can_overflow=True),
    Op("abs", 1, abs, Format("|{0}|"), Format("\\left|{0}\\right|"), "|a|", code="torch.abs({0})"),
    Op("square", 1, square, Format("{0}²", 8, False), Format("{0}^{{2}}", 8, False), "a^2", code="{0} * {0}",
       can_overflow=True),
    Op("log", 1, log, Format("log({0})"), Format("\\log({0})"), "sign(a)·ln|a|, guarded", code="log({0})",
       helpers=(log,)),
    Op("sqrt", 1, sqrt, Format("sqrt({0})"), Format("\\sqrt{{{0}}}"), "sign(a)·sqrt(|a|), guarded",
       code="sqrt({0})", helpers=(sqrt,)),
)

# --- aggregates: three statistics over four index sets -----------------------------------

_STATISTICS = {
    # statistic: (function, plain-text prefix, LaTeX template, description, can_overflow)
    # LaTeX templates are str.format templates after "@" is replaced by the index set
    "mean": (stats.mean, "mean", "\\mu_{{\\mathrm{{@}}}}({0})", "mean over {i}", False),
    "sqmean": (stats.sqmean, "sqmean", "\\mu_{{\\mathrm{{@}}}}({0}^{{2}})", "mean of a^2 over {i}", True),
    "std": (stats.std, "std", "s_{{\\mathrm{{@}}}}({0})", "sqrt(biased variance + eps) over {i}", True),
}


def _aggregate(statistic: str, index_set: str) -> Op:
    fn_stat, prefix, latex, doc, overflow = _STATISTICS[statistic]
    name = f"{prefix}_{index_set}"

    def fn(a: torch.Tensor) -> torch.Tensor:
        return fn_stat(a, index_set)

    fn.__name__ = fn.__qualname__ = name
    fn.__module__ = __name__
    globals()[name] = fn  # importable by name, so that DEAP trees and workers can pickle it
    return Op(name, 1, fn, Format(name + "({0})"), Format(latex.replace("@", index_set)), doc.format(i=index_set),
              code=f'{fn_stat.__name__}({{0}}, "{index_set}")', index_set=index_set, statistic=statistic,
              can_overflow=overflow, helpers=(fn_stat,))


_AGGREGATES = tuple(_aggregate(s, i) for s in _STATISTICS for i in stats.INDEX_SETS)

OPS: dict[str, Op] = {op.name: op for op in _ELEMENTWISE + _AGGREGATES}
"""Every op of the search space, by name: 12 element-wise and 12 aggregates."""


def get(name: str) -> Op:
    """The op called ``name``; a ``KeyError`` that lists the valid names otherwise."""
    try:
        return OPS[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r}; valid ops: {', '.join(OPS)}") from None
