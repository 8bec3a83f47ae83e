"""Known layers, each written as a genome of our search space (no hand-written modules).

Notation of ``../shared/DESIGN.md``: s_I = sqrt(s^2_I(x) + eps); the affine comes afterwards.
``sqrt(mu(x^2) + eps)`` is the guarded ``sqrt(sqmean(x))`` (sqrt(max(mu, GUARD_EPS)) instead of
sqrt(mu + eps): equal wherever mu(x^2) is not tiny).

Deviation, kept so that keys of searches already run stay valid: ``evonorm_b1`` writes the paper's
``x + 1`` as ``x + v1``, v1 a trainable per-channel vector that starts at 1. It is the paper's layer
at initialisation and drifts from it as v1 trains. The paper's exact layer, with a fixed one, is
:data:`EVONORM_B1_PAPER`: ``exp(zero)`` is exactly 1 and has no parameter.
"""

from __future__ import annotations

from gp.genome import Genome, GenomeError

_EXPRESSIONS = {
    "bn_relu": "max(div(add(x, neg(mean_batch(x))), std_batch(x)), zero)",
    "bn_silu": "mul(div(add(x, neg(mean_batch(x))), std_batch(x)), "
               "sigmoid(div(add(x, neg(mean_batch(x))), std_batch(x))))",
    "gn_relu": "max(div(add(x, neg(mean_group(x))), std_group(x)), zero)",
    "evonorm_b0": "div(x, max(std_batch(x), add(mul(v1, x), std_instance(x))))",
    "evonorm_b1": "div(x, max(std_batch(x), mul(add(x, v1), sqrt(sqmean_instance(x)))))",
    "evonorm_b2": "div(x, max(std_batch(x), add(sqrt(sqmean_instance(x)), neg(x))))",
    "evonorm_s0": "div(mul(x, sigmoid(mul(v1, x))), std_group(x))",
    "evonorm_s1": "div(mul(x, sigmoid(x)), std_group(x))",
    "evonorm_s2": "div(mul(x, sigmoid(x)), sqrt(sqmean_group(x)))",
}

EVONORM_B1_PAPER = Genome.from_expression(
    "div(x, max(std_batch(x), mul(add(x, exp(zero)), sqrt(sqmean_instance(x)))))")
"""EvoNorm-B1 exactly as the paper writes it: x / max(s_b(x), (x + 1) * sqrt(mu_inst(x^2) + eps))."""

_GENOMES = {name: Genome.from_expression(text) for name, text in _EXPRESSIONS.items()}


def names() -> list[str]:
    """Names of the known layers."""
    return list(_GENOMES)


def get(name: str) -> Genome:
    """The known layer called ``name``; a ``KeyError`` listing the valid names otherwise."""
    try:
        return _GENOMES[name]
    except KeyError:
        raise KeyError(f"unknown zoo layer {name!r}; known: {', '.join(_GENOMES)}") from None


def resolve(spec: str) -> Genome:
    """A layer from what a user types: a zoo name, genome text (``t1 = ...``) or an expression."""
    spec = spec.strip()
    if spec in _GENOMES:
        return _GENOMES[spec]
    if "=" in spec:
        return Genome.parse(spec)
    if spec.isidentifier() and "(" not in spec:
        raise GenomeError(f"{spec!r} is not a zoo layer (known: {', '.join(_GENOMES)}), genome text "
                          "('t1 = op(...); ...') or an expression ('op(x, ...)')")
    return Genome.from_expression(spec)
