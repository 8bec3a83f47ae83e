"""Known layers, each written as a genome of our search space (no hand-written modules).

Notation of ``../shared/DESIGN.md``: s_I = sqrt(s^2_I(x) + eps); the affine comes afterwards.
EvoNorm-B1's ``x + 1`` is written ``x + v1`` (v1 starts at 1 and is the space's only source of a
one), and ``sqrt(mu(x^2) + eps)`` is the guarded ``sqrt(sqmean(x))``.
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
