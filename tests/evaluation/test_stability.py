"""The stability stress test rejects by its ascent, not only by a plain overflow at step 0.

A two-convolution network on an 8x8 batch keeps the paper's 100 ascent steps to about a second.
``exp(x)`` is finite there with the initial weights; only moving the weights up the gradient norm
makes it explode, so an ascent with the wrong sign (a descent) would let it through.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from evaluation.hooks import CandidateRejected, Stability, TrialContext
from gp import Genome, layer_factory, zoo

PAPER = {"steps": 100, "threshold": 1e8, "lr": 0.01}  # the defaults of RejectionConfig


def _context(genome: Genome) -> TrialContext:
    torch.manual_seed(0)
    factory = layer_factory(genome)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), factory(16),
                          nn.Conv2d(16, 16, 3, padding=1, bias=False), factory(16),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    gen = torch.Generator().manual_seed(0)
    batch = (torch.randn(8, 3, 8, 8, generator=gen), torch.randint(0, 10, (8,), generator=gen))  # (N, C, H, W)
    return TrialContext(genome, "tiny", model, torch.device("cpu"), batch)


def _grad_norm(ctx: TrialContext) -> float:
    weights = [m.weight for m in ctx.model.modules() if isinstance(m, nn.Conv2d)]
    loss = F.cross_entropy(ctx.model(ctx.batch[0]), ctx.batch[1])
    return float(torch.sqrt(sum(g.square().sum() for g in torch.autograd.grad(loss, weights))))


def _ascent_steps(reason: str) -> int:
    return int(reason.rsplit("after ", 1)[1].split()[0])


def test_a_layer_finite_at_step_0_is_rejected_later_by_the_ascent():
    ctx = _context(Genome.from_expression("exp(x)"))
    before = _grad_norm(ctx)
    assert math.isfinite(before) and before < PAPER["threshold"] / 1e3
    with pytest.raises(CandidateRejected) as caught:
        Stability(**PAPER).before_training(ctx)
    assert caught.value.stage == "stability"
    assert "gradient norm" in caught.value.reason
    assert _ascent_steps(caught.value.reason) >= 5  # the ascent raised it, step after step
    assert _grad_norm(ctx) == pytest.approx(before)  # the test ran on a copy: training starts untouched


def test_the_rejection_needs_the_ascent_direction():
    """The same layer passes when the weights move the other way, or not far enough: what rejects it
    is the ascent on the gradient norm, not its starting point."""
    ctx = _context(Genome.from_expression("exp(x)"))
    with pytest.raises(CandidateRejected) as caught:
        Stability(**PAPER).before_training(ctx)
    needed = _ascent_steps(caught.value.reason)
    Stability(needed - 1, PAPER["threshold"], PAPER["lr"]).before_training(ctx)
    with pytest.raises(CandidateRejected) as just:  # the norm at the last step, computed without a second derivative
        Stability(needed, PAPER["threshold"], PAPER["lr"]).before_training(ctx)
    assert just.value.reason == caught.value.reason
    Stability(PAPER["steps"], PAPER["threshold"], -PAPER["lr"]).before_training(ctx)  # descent: no rejection


@pytest.mark.parametrize("name", ["bn_relu", "evonorm_b0", "evonorm_s0"])
def test_known_good_layers_survive_the_papers_100_ascent_steps(name):
    Stability(**PAPER).before_training(_context(zoo.get(name)))


@pytest.mark.parametrize("every", [3, 7, 200])
def test_reading_the_norms_in_chunks_gives_the_same_verdict_and_step(every):
    """On CUDA the host reads the gradient norms every few ascent steps; the verdict, its step and
    its message must be those of reading after every step."""
    ctx = _context(Genome.from_expression("exp(x)"))
    with pytest.raises(CandidateRejected) as one:
        Stability(**PAPER).before_training(ctx)
    with pytest.raises(CandidateRejected) as chunked:
        Stability(**PAPER, check_every=every).before_training(ctx)
    assert chunked.value.reason == one.value.reason
    Stability(**PAPER, check_every=every).before_training(_context(zoo.get("evonorm_s0")))  # 101 norms, any chunk


def test_no_gradient_ends_the_test_at_that_step_even_in_chunks():
    """A layer that passes no gradient to the weights has nothing to ascend: it passes at step 0.
    Read in chunks, the steps computed after it (log 0, then NaN weights) must not reject it."""
    ctx = _context(Genome.from_expression("mul(x, zero)"))
    assert _grad_norm(ctx) == 0.0
    Stability(**PAPER).before_training(ctx)
    Stability(**PAPER, check_every=10).before_training(ctx)
    with pytest.raises(ValueError, match="check_every"):
        Stability(**PAPER, check_every=0)
