"""A cheap functional surrogate of the proxy task, for studying the search itself.

Fitness of a layer = agreement of its output with a hidden target layer's output on fixed probe
tensors, from the normalised error e = mean((y - t)²) / var(t): ``"r2"`` scores 1 - e clipped at
0 (flat at 0 for most random layers), ``"inverse"`` scores 1 / (1 + e) (graded everywhere); 1 is
the same function, and scale counts. One objective per probe shape, as the real task has one per
anchor network. A layer whose output
is not finite or is constant is "rejected" (None).
It costs milliseconds, so evolution and random search can be compared over many seeds.

``vectors="init"`` (the default) evaluates every layer with its trainable vectors at their
initial values, ``v0 = 0`` and ``v1 = 1``, so ``v1·x`` and ``x`` are one function.
``vectors="random"`` draws them per channel once (:func:`gp.checks.drawn_vectors`, as the static
probe does) and gives the same values to the target and every candidate. A layer that
matches the target only because the vectors are at their initial values then stops matching,
so more of the score has to come from the target's formula (docs/results.md §2g).

``probes="narrow"`` (the default) draws probe inputs whose channels differ in scale by at most 2×
and whose samples share one scale. There a pointwise function can pass for a normaliser
(evolution's best B0 in §2g has no statistic at all). ``probes="wide"`` spreads the scales over
orders of magnitude, as activations in a network do: each channel's scale is log-uniform in
[1e-2, 1e2] and each sample's in [0.1, 10], with per-channel shifts of the channel's own size. A
layer that normalises is invariant to much of that; a pointwise function is not, so it can no
longer match a normalising target without computing its statistics. ``probes="both"`` scores on
the narrow and then the wide probes (twice the objectives): a layer must agree with the target
on both, so neither a pointwise approximation (which fails on the wide probes) nor a saturating
function such as tanh (the best layers on the wide probes alone, docs/results.md §2h) is enough.
"""

from __future__ import annotations

import torch

from gp.checks import drawn_vectors
from gp.genome import Genome
from gp.interpreter import InterpretedLayer

SHAPES = ((8, 16, 4, 4), (8, 32, 4, 4), (8, 64, 4, 4))


def _narrow(shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    return (torch.randn(shape, generator=g) * (1 + torch.rand(1, shape[1], 1, 1, generator=g))
            + torch.randn(1, shape[1], 1, 1, generator=g))


def _log_uniform(shape: tuple[int, ...], low: float, high: float, g: torch.Generator) -> torch.Tensor:
    return torch.exp(torch.empty(shape).uniform_(float(torch.log(torch.tensor(low))),
                                                 float(torch.log(torch.tensor(high))), generator=g))


def _wide(shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    n, c = shape[0], shape[1]
    channel = _log_uniform((1, c, 1, 1), 1e-2, 1e2, g)
    sample = _log_uniform((n, 1, 1, 1), 0.1, 10.0, g)
    shift = torch.randn(1, c, 1, 1, generator=g) * channel
    return (torch.randn(shape, generator=g) * channel + shift) * sample


_DRAW = {"narrow": _narrow, "wide": _wide}

PROBES = {"narrow": ("narrow",), "wide": ("wide",), "both": ("narrow", "wide")}
"""The probe families of each ``probes`` setting (see the module's docstring), in objective order."""


class Surrogate:
    def __init__(self, target: Genome, shapes=SHAPES, seed: int = 0, score: str = "r2",
                 vectors: str = "init", probes: str = "narrow") -> None:
        if score not in ("r2", "inverse"):
            raise ValueError(f"unknown surrogate score {score!r}; valid: r2, inverse")
        if vectors not in ("init", "random"):
            raise ValueError(f"unknown surrogate vectors {vectors!r}; valid: init, random")
        if probes not in PROBES:
            raise ValueError(f"unknown surrogate probes {probes!r}; valid: {', '.join(PROBES)}")
        self.score = score
        self.vectors = vectors
        self.probes = probes
        g = torch.Generator().manual_seed(seed)
        self.inputs = [_DRAW[family](s, g) for family in PROBES[probes] for s in shapes]
        # drawn after the inputs, so the default's probes are those it always had
        self.v = [drawn_vectors((1, x.shape[1], 1, 1), g) if vectors == "random" else None for x in self.inputs]
        self.targets = [self._output(target, x, v) for x, v in zip(self.inputs, self.v, strict=True)]
        if any(t is None for t in self.targets):
            raise ValueError(f"target layer {target} is not finite on the probes")

    @staticmethod
    @torch.no_grad()
    def _output(genome: Genome, x: torch.Tensor, v=None) -> torch.Tensor | None:
        layer = InterpretedLayer(genome.canonical, x.shape[1]).train()
        if v is not None:
            layer.v0.copy_(v[0].reshape(layer.v0.shape))
            layer.v1.copy_(v[1].reshape(layer.v1.shape))
        out = layer(x).double().flatten()
        return out if torch.isfinite(out).all() and float(out.std()) > 1e-9 else None

    def __call__(self, genome: Genome) -> tuple[float, ...] | None:
        scores = []
        for x, v, target in zip(self.inputs, self.v, self.targets, strict=True):
            out = self._output(genome, x, v)
            if out is None:
                return None
            error = float(((out - target) ** 2).mean() / target.var(unbiased=False))
            if error != error:  # NaN
                scores.append(0.0)
            else:
                scores.append(max(0.0, 1 - error) if self.score == "r2" else 1 / (1 + error))
        return tuple(scores)
