"""Static checks on probe tensors, before any network is built, and functional fingerprints.

The probe is a fixed pseudo-random batch (seeded, CPU, float32) run through the compiled layer
in training mode. These checks are what the cheapest rejection hook needs: a layer whose output is
not finite, does not depend on x, or is constant cannot be a useful normalization-activation.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from gp.genome import Genome
from gp.interpreter import InterpretedLayer

PROBE_SHAPE = (8, 64, 6, 6)  # (N, C, H, W): 64 channels make 32 groups of 2
PROBE_SEED = 20200406


@lru_cache(maxsize=8)
def probe_inputs(shape: tuple[int, ...] = PROBE_SHAPE, *, count: int = 2) -> tuple[torch.Tensor, ...]:
    """``count`` fixed probe batches: shifted, scaled normals like real pre-activations. Made once
    and shared: read them, never write into them."""
    g = torch.Generator().manual_seed(PROBE_SEED)
    out = []
    for _ in range(count):
        scale = torch.rand(1, shape[1], 1, 1, generator=g) * 2 + 0.5
        shift = torch.randn(1, shape[1], 1, 1, generator=g)
        out.append(torch.randn(shape, generator=g) * scale + shift)
    return tuple(out)


def drawn_vectors(shape: tuple[int, ...], generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Values for a layer's trainable vectors away from their initial ones (v0 = 0, v1 = 1), so
    that those hide nothing: v0 ~ 0.5·N(0, 1), then v1 ~ 1 + 0.5·N(0, 1), drawn from ``generator``."""
    v0 = torch.randn(shape, generator=generator) * 0.5
    return v0, 1 + torch.randn(shape, generator=generator) * 0.5


@torch.no_grad()
def _probe_layer(genome: Genome, channels: int) -> torch.nn.Module:
    # the op-by-op interpreter (same numerics as the generated code): a probe runs a layer once or
    # twice, where generating code would cost ten times the forward passes
    layer = InterpretedLayer(genome.canonical, channels).train()
    # trainable vectors away from their initial values, so that v0 = 0 and v1 = 1 hide nothing
    v0, v1 = drawn_vectors(layer.v0.shape, torch.Generator().manual_seed(PROBE_SEED + 1))
    layer.v0.copy_(v0)
    layer.v1.copy_(v1)
    return layer


@torch.no_grad()
def _outputs(genome: Genome, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    layer = _probe_layer(genome, inputs[0].shape[1])
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


def probe(genome: Genome, inputs: Sequence[torch.Tensor] | None = None) -> ProbeReport:
    """Run the static checks on the probe batches (or on ``inputs``, at least two of them)."""
    inputs = inputs if inputs is not None else probe_inputs()
    outs = _outputs(genome, inputs)
    finite = all(bool(torch.isfinite(o).all()) for o in outs)
    depends = genome.reads_x and not torch.equal(outs[0], outs[1])
    constant = finite and all(float((o - o.flatten()[0]).abs().max()) <= 1e-6 * (1 + float(o.abs().max()))
                              for o in outs)
    return ProbeReport(finite, depends, constant, genome.live_nodes, genome.uses_batch)


def static_problem(genome: Genome) -> str | None:
    """Why the static probe rejects ``genome`` (the evaluator's first check), or None: what a
    searcher screens proposals with before spending an evaluation on them."""
    return probe(genome).problem


SIGNATURE_SAMPLES = 64  # output positions kept per probe output (AutoML-Zero keeps 10 predictions)


@torch.no_grad()
def signature(genome: Genome) -> np.ndarray:
    """The layer's outputs at fixed positions of the probe batches, as float64: train mode on
    both probe batches, then eval mode (running batch estimates) on the first.

    Two genomes computing the same function give signatures equal up to float noise; compare them
    with a tolerance (:class:`gp.search.cache.FunctionCache`), never bit for bit: rounding before
    hashing puts a few values on the wrong side of a rounding edge and misses true matches.
    """
    inputs = probe_inputs()
    layer = _probe_layer(genome, inputs[0].shape[1])
    outs = [layer(x) for x in inputs]
    outs.append(layer.eval()(inputs[0]))
    g = torch.Generator().manual_seed(PROBE_SEED + 2)
    picks = torch.randint(outs[0].numel(), (SIGNATURE_SAMPLES,), generator=g)
    return torch.cat([o.float().flatten()[picks] for o in outs]).double().numpy()


def fingerprint(genome: Genome) -> str:
    """:func:`signature` as compact text (base64 of float32), as records and tracking store it."""
    return encode_signature(signature(genome))


def encode_signature(values: np.ndarray) -> str:
    return base64.b64encode(np.asarray(values, dtype="<f4").tobytes()).decode("ascii")


def decode_signature(text: str) -> np.ndarray:
    """The signature encoded by :func:`encode_signature`; raises ValueError for other text."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValueError(f"not an encoded signature: {text[:40]!r}") from exc
    if not raw or len(raw) % 4:
        raise ValueError(f"not an encoded signature: {text[:40]!r}")
    return np.frombuffer(raw, dtype="<f4").astype(np.float64)
