"""Statistics over the paper's four index sets, as small free functions.

Every statistic is computed in float32 whatever the input dtype (bfloat16 moments lose most of
their digits) and returned in the input's dtype, shaped so that it broadcasts back onto the
input: reduced dimensions are kept with size 1, never materialised.

Tensors in a layer graph are 4-D ``(N, C, H, W)`` or broadcastable to it (the per-channel
vectors are ``(1, C, 1, 1)``, constants may be 0-D); inputs of lower rank are viewed as 4-D with
leading singleton dimensions first, so every statistic is defined on every node of a graph.
"""

from __future__ import annotations

import torch

EPS = 1e-5
"""Added to the biased variance inside ``std_*`` (the reference EvoNorm code's value)."""

GROUPS = 32
"""Default number of channel groups; decremented until it divides C (the official code's rule)."""

INDEX_SETS = ("batch", "layer", "instance", "group")
"""The paper's index sets: (n, h, w), (c, h, w), (h, w) and (c/g, h, w)."""

_DIMS = {"batch": (0, 2, 3), "layer": (1, 2, 3), "instance": (2, 3)}


def group_count(channels: int, groups: int = GROUPS) -> int:
    """The largest g <= ``groups`` that divides ``channels``."""
    g = max(1, min(groups, channels))
    while channels % g:
        g -= 1
    return g


def _as_4d(t: torch.Tensor) -> torch.Tensor:
    if t.dim() > 4:
        raise ValueError(f"statistics take tensors of at most 4 dimensions, got shape {tuple(t.shape)}")
    return t.reshape((1,) * (4 - t.dim()) + tuple(t.shape))


def _reduce(t: torch.Tensor, index_set: str, fn, groups: int | None = None) -> torch.Tensor:
    """Apply ``fn(tensor, dims)`` over ``index_set``; result broadcasts onto ``t``. ``groups``
    (the "group" set only) overrides :func:`group_count`: compiled code passes it as a size, so
    that it need not branch on the channel count."""
    t4 = _as_4d(t).float()
    if index_set == "group":
        n, c, h, w = t4.shape
        g = group_count(c) if groups is None else groups
        out = fn(t4.reshape(n, g, c // g, h, w), (2, 3, 4))  # (N, G, 1, 1, 1)
        return out.reshape(n, g, 1, 1, 1).expand(n, g, c // g, 1, 1).reshape(n, c, 1, 1)
    return fn(t4, _DIMS[index_set])


def mean(t: torch.Tensor, index_set: str, groups: int | None = None) -> torch.Tensor:
    """mu_I(t)."""
    return _reduce(t, index_set, lambda a, d: a.mean(dim=d, keepdim=True), groups).to(t.dtype)


def sqmean(t: torch.Tensor, index_set: str, groups: int | None = None) -> torch.Tensor:
    """mu_I(t^2), the second moment."""
    return _reduce(t, index_set, lambda a, d: a.square().mean(dim=d, keepdim=True), groups).to(t.dtype)


class TwoPassVariance(torch.autograd.Function):
    """The variance over ``dims`` (kept), by the two-pass formula mean((a - mean(a))^2) in the
    forward pass, with ``torch.var``'s own backward formula (2 / (n - correction)) * g * (a -
    mean(a)), written in differentiable operations so that double backward (the stability test)
    stays exact. On a CPU ``torch.var`` runs Welford's one-pass algorithm, several times slower
    than two passes over the data."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, dims: tuple[int, ...], correction: int) -> torch.Tensor:
        n = 1
        for d in dims:
            n *= a.shape[d]
        ctx.dims, ctx.divisor = dims, n - correction
        ctx.save_for_backward(a)
        centred = a - a.mean(dim=dims, keepdim=True)
        return centred.square().sum(dim=dims, keepdim=True) / ctx.divisor

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        (a,) = ctx.saved_tensors
        centred = a - a.mean(dim=ctx.dims, keepdim=True)
        return centred * (g * (2.0 / ctx.divisor)), None, None


def variance(t: torch.Tensor, index_set: str, *, unbiased: bool = False, groups: int | None = None) -> torch.Tensor:
    """s^2_I(t), biased unless asked (running estimates use the unbiased one, as BatchNorm)."""
    correction = 1 if unbiased else 0
    return _reduce(t, index_set, lambda a, d: TwoPassVariance.apply(a, tuple(d), correction), groups)


def std(t: torch.Tensor, index_set: str, groups: int | None = None) -> torch.Tensor:
    """sqrt(s^2_I(t) + eps) with the biased variance."""
    return torch.sqrt(variance(t, index_set, groups=groups) + EPS).to(t.dtype)
