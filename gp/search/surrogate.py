"""A cheap functional surrogate of the proxy task, for studying the search itself.

Fitness of a layer = agreement of its output with a hidden target layer's output on fixed probe
tensors, from the normalised error e = mean((y - t)²) / var(t): ``"r2"`` scores 1 - e clipped at
0 (flat at 0 for most random layers), ``"inverse"`` scores 1 / (1 + e) (graded everywhere); 1 is
the same function, and scale counts. One objective per probe shape, as the real task has one per
anchor network. A layer whose output
is not finite or is constant is "rejected" (None).
It costs milliseconds, so evolution and random search can be compared over many seeds.
"""

from __future__ import annotations

import torch

from gp.genome import Genome
from gp.interpreter import InterpretedLayer

SHAPES = ((8, 16, 4, 4), (8, 32, 4, 4), (8, 64, 4, 4))


class Surrogate:
    def __init__(self, target: Genome, shapes=SHAPES, seed: int = 0, score: str = "r2") -> None:
        if score not in ("r2", "inverse"):
            raise ValueError(f"unknown surrogate score {score!r}; valid: r2, inverse")
        self.score = score
        g = torch.Generator().manual_seed(seed)
        self.inputs = [torch.randn(s, generator=g) * (1 + torch.rand(1, s[1], 1, 1, generator=g))
                       + torch.randn(1, s[1], 1, 1, generator=g) for s in shapes]
        self.targets = [self._output(target, x) for x in self.inputs]
        if any(t is None for t in self.targets):
            raise ValueError(f"target layer {target} is not finite on the probes")

    @staticmethod
    @torch.no_grad()
    def _output(genome: Genome, x: torch.Tensor) -> torch.Tensor | None:
        out = InterpretedLayer(genome.canonical, x.shape[1]).train()(x).double().flatten()
        return out if torch.isfinite(out).all() and float(out.std()) > 1e-9 else None

    def __call__(self, genome: Genome) -> tuple[float, ...] | None:
        scores = []
        for x, target in zip(self.inputs, self.targets, strict=True):
            out = self._output(genome, x)
            if out is None:
                return None
            error = float(((out - target) ** 2).mean() / target.var(unbiased=False))
            if error != error:  # NaN
                scores.append(0.0)
            else:
                scores.append(max(0.0, 1 - error) if self.score == "r2" else 1 / (1 + error))
        return tuple(scores)
