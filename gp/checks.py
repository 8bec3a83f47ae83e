"""Static checks on probe tensors, before any network is built, and functional fingerprints.

The probe is a fixed pseudo-random batch (seeded, CPU, float32) run through the compiled layer
in training mode. These checks are what the cheapest rejection hook needs: a layer whose output is
not finite, does not depend on x, or is constant cannot be a useful normalization-activation.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from gp.compiler import compile_layer
from gp.genome import Genome

PROBE_SHAPE = (8, 64, 6, 6)  # (N, C, H, W): 64 channels make 32 groups of 2
PROBE_SEED = 20200406


def probe_inputs(shape: tuple[int, ...] = PROBE_SHAPE, *, count: int = 2) -> list[torch.Tensor]:
    """``count`` fixed probe batches: shifted, scaled normals like real pre-activations."""
    g = torch.Generator().manual_seed(PROBE_SEED)
    out = []
    for _ in range(count):
        scale = torch.rand(1, shape[1], 1, 1, generator=g) * 2 + 0.5
        shift = torch.randn(1, shape[1], 1, 1, generator=g)
        out.append(torch.randn(shape, generator=g) * scale + shift)
    return out


@torch.no_grad()
def _outputs(genome: Genome, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    layer = compile_layer(genome, inputs[0].shape[1]).train()
    # trainable vectors away from their initial values, so that v0 = 0 and v1 = 1 hide nothing
    g = torch.Generator().manual_seed(PROBE_SEED + 1)
    layer.v0.copy_(torch.randn(layer.v0.shape, generator=g) * 0.5)
    layer.v1.copy_(1 + torch.randn(layer.v1.shape, generator=g) * 0.5)
    return [layer(x) for x in inputs]


@dataclass(frozen=True)
class ProbeReport:
    finite: bool  # every output element finite
    depends_on_x: bool  # the output changes when x does
    constant: bool  # the output is (almost) the same everywhere
    live_nodes: int
    uses_batch: bool

    @property
    def problem(self) -> str | None:
        """Why the layer is hopeless, or None."""
        if not self.finite:
            return "output not finite on the probe batch"
        if not self.depends_on_x:
            return "output does not depend on x"
        if self.constant:
            return "output is constant"
        return None


def probe(genome: Genome, inputs: list[torch.Tensor] | None = None) -> ProbeReport:
    """Run the static checks on the probe batches (or on ``inputs``, at least two of them)."""
    inputs = inputs if inputs is not None else probe_inputs()
    outs = _outputs(genome, inputs)
    finite = all(bool(torch.isfinite(o).all()) for o in outs)
    depends = genome.reads_x and not torch.equal(outs[0], outs[1])
    constant = finite and all(float((o - o.flatten()[0]).abs().max()) <= 1e-6 * (1 + float(o.abs().max()))
                              for o in outs)
    return ProbeReport(finite, depends, constant, genome.live_nodes, genome.uses_batch)


def fingerprint(genome: Genome, *, bits: int = 10) -> str:
    """A hash of the layer's outputs on the probe batches, rounded to ``bits`` mantissa bits
    (about three significant digits), so that two genomes computing the same function (written
    differently) share it and float nondeterminism does not break matches.

    Rounding works on the float32 bit pattern (round half up on the magnitude), which is cheap;
    every NaN hashes alike, and values below 1e-12 in magnitude count as 0.
    """
    drop = 23 - bits
    h = hashlib.sha256()
    for o in _outputs(genome, probe_inputs()):
        o = o.float()
        o = torch.where(o.abs() < 1e-12, torch.zeros_like(o), o)
        o = torch.where(torch.isnan(o), torch.full_like(o, float("nan")), o)
        pattern = o.view(torch.int32)
        rounded = (pattern + (1 << (drop - 1))) >> drop
        h.update(rounded.numpy().tobytes())
    return h.hexdigest()[:16]
