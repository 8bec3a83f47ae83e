"""A cheap functional surrogate of the proxy task, for studying the search itself.

Fitness of a layer = agreement of its output with a hidden target layer's output on fixed probe
tensors, as R² = 1 - mean((y - t)²) / var(t) clipped at 0 (1: the same function; scale counts);
one objective per probe shape, as the real task has one per anchor network. A layer whose output
is not finite or is constant is "rejected" (None).
It costs milliseconds, so evolution and random search can be compared over many seeds.
"""

from __future__ import annotations

import torch

from gp.compiler import compile_layer
from gp.genome import Genome

SHAPES = ((8, 16, 4, 4), (8, 32, 4, 4), (8, 64, 4, 4))


class Surrogate:
    def __init__(self, target: Genome, shapes=SHAPES, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.inputs = [torch.randn(s, generator=g) * (1 + torch.rand(1, s[1], 1, 1, generator=g))
                       + torch.randn(1, s[1], 1, 1, generator=g) for s in shapes]
        self.targets = [self._output(target, x) for x in self.inputs]
        if any(t is None for t in self.targets):
            raise ValueError(f"target layer {target} is not finite on the probes")

    @staticmethod
    @torch.no_grad()
    def _output(genome: Genome, x: torch.Tensor) -> torch.Tensor | None:
        out = compile_layer(genome, x.shape[1]).train()(x).double().flatten()
        return out if torch.isfinite(out).all() and float(out.std()) > 1e-9 else None

    def __call__(self, genome: Genome) -> tuple[float, ...] | None:
        scores = []
        for x, target in zip(self.inputs, self.targets, strict=True):
            out = self._output(genome, x)
            if out is None:
                return None
            r2 = 1 - float(((out - target) ** 2).mean() / target.var(unbiased=False))
            scores.append(max(0.0, r2) if r2 == r2 else 0.0)  # r2 != r2: NaN
        return tuple(scores)
