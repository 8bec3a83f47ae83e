"""Genome -> ``torch.nn.Module``.

A compiled layer interprets the live nodes of its genome in order, then applies the per-channel
affine ``y * gamma + beta`` that every found layer ends with (outside the searched graph).

Batch aggregates behave like BatchNorm: in training they use the statistic of the current batch
and update a running estimate (momentum 0.1; ``std_batch`` keeps the unbiased running variance,
as ``BatchNorm2d`` does); in eval mode they read the running estimate. Every other statistic is
computed from its own input in both modes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from gp import ops, stats
from gp.genome import NUM_INPUTS, Genome

MOMENTUM = 0.1

NormAct = Callable[..., nn.Module]
"""A norm-act factory: ``(num_features, *, apply_act=True, device=None, dtype=None) -> Module``."""

NO_ACT_POLICIES = ("affine", "candidate", "batchnorm")


class GenomeLayer(nn.Module):
    """A normalization-activation layer computed by a genome's graph, then a per-channel affine."""

    def __init__(self, genome: Genome, num_features: int, *, device=None, dtype=None) -> None:
        super().__init__()
        if num_features < 1:
            raise ValueError(f"num_features must be positive, got {num_features}")
        factory = {"device": device, "dtype": dtype}
        self.genome = genome.canonical  # dead nodes removed
        self.num_features = num_features
        shape = (1, num_features, 1, 1)
        self.v0 = nn.Parameter(torch.zeros(shape, **factory))
        self.v1 = nn.Parameter(torch.ones(shape, **factory))
        self.gamma = nn.Parameter(torch.ones(shape, **factory))
        self.beta = nn.Parameter(torch.zeros(shape, **factory))
        # one running estimate per batch aggregate, named after its node
        self._program: list[tuple[int, ops.Op, tuple[int, ...], str | None]] = []
        for k, node in enumerate(self.genome.nodes):
            op = ops.OPS[node.op]
            buffer = None
            if op.uses_batch:
                buffer = f"running_t{k + 1}"
                init = torch.zeros if op.statistic == "mean" else torch.ones  # mean 0, var 1, E[x^2] 1
                self.register_buffer(buffer, init(num_features, device=device, dtype=torch.float32))
            self._program.append((NUM_INPUTS + k, op, node.inputs, buffer))

    def extra_repr(self) -> str:
        return f"{self.num_features}, genome='{self.genome}'"

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) -> (N, C, H, W)
        if x.dim() != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"expected input (N, {self.num_features}, H, W), got {tuple(x.shape)}")
        values: list[torch.Tensor] = [x, x.new_zeros(()), self.v0.to(x.dtype), self.v1.to(x.dtype)]
        for _, op, inputs, buffer in self._program:
            args = [values[i] for i in inputs]
            values.append(self._batch_stat(op, args[0], buffer) if buffer else op.fn(*args))
        y = values[-1].to(x.dtype)
        return torch.addcmul(self.beta.to(x.dtype), y, self.gamma.to(x.dtype)).expand_as(x)

    def _batch_stat(self, op: ops.Op, a: torch.Tensor, buffer: str) -> torch.Tensor:
        running: torch.Tensor = getattr(self, buffer)
        if not self.training:
            r = running if op.statistic != "std" else torch.sqrt(running + stats.EPS)
            return r.reshape(1, -1, 1, 1).to(a.dtype)
        if op.statistic == "std":
            var = stats.variance(a, "batch")  # float32, biased: what std_batch uses
            out = torch.sqrt(var + stats.EPS).to(a.dtype)
            # the running estimate keeps the unbiased variance, as BatchNorm2d; n = N*H*W per channel
            n = a.shape[0] * a.shape[2] * a.shape[3] if a.dim() == 4 else 1
            observed = var * (n / (n - 1)) if n > 1 else var
        else:
            out = observed = op.fn(a)
        with torch.no_grad():
            running.lerp_(observed.detach().float().reshape(-1).expand(self.num_features), MOMENTUM)
        return out


def compile_layer(genome: Genome, num_features: int, *, device=None, dtype=None) -> GenomeLayer:
    """The genome as a module with parameters v0, v1, gamma, beta (and running estimates)."""
    return GenomeLayer(genome, num_features, device=device, dtype=dtype)


class Affine(nn.Module):
    """Per-channel ``x * gamma + beta``: the official EvoNorm code's layer where a network
    normalises without an activation (e.g. MobileNet's linear bottlenecks)."""

    def __init__(self, num_features: int, *, device=None, dtype=None) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(1, num_features, 1, 1, device=device, dtype=dtype))
        self.beta = nn.Parameter(torch.zeros(1, num_features, 1, 1, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma.to(x.dtype) + self.beta.to(x.dtype)


def layer_factory(genome: Genome, *, no_act: str = "affine") -> NormAct:
    """A norm-act factory for networks: ``factory(num_features, *, apply_act=True, device, dtype)``.

    ``apply_act=True`` gives the compiled candidate (it replaces a BN-ReLU pair). Positions that
    normalise without an activation follow ``no_act``: ``"affine"`` (default, as the official
    EvoNorm code), ``"candidate"`` (the candidate there too) or ``"batchnorm"``.
    """
    if no_act not in NO_ACT_POLICIES:
        raise ValueError(f"unknown no-activation policy {no_act!r}; valid: {', '.join(NO_ACT_POLICIES)}")

    def factory(num_features: int, *, apply_act: bool = True, device=None, dtype=None) -> nn.Module:
        if apply_act or no_act == "candidate":
            return GenomeLayer(genome, num_features, device=device, dtype=dtype)
        if no_act == "affine":
            return Affine(num_features, device=device, dtype=dtype)
        return nn.BatchNorm2d(num_features, device=device, dtype=dtype)

    factory.genome = genome  # type: ignore[attr-defined]  - lets a network report what it holds
    return factory
