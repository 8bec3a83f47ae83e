"""Rejection hooks: a hook raises :class:`CandidateRejected` and the evaluator records it.

The protocol has three moments, cheapest first: ``before_training`` (per anchor, with a fresh
model, before any step), ``after_step`` (loss and step time) and ``at_evaluation`` (validation
accuracy). The static probe runs once per candidate before any network is built.
"""

from __future__ import annotations

import copy
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from evaluation.config import RejectionConfig
from evaluation.graphs import ReplayedCall
from gp import Genome
from gp.checks import static_problem


class CandidateRejected(Exception):
    def __init__(self, reason: str, stage: str) -> None:
        super().__init__(f"{stage}: {reason}")
        self.reason = reason
        self.stage = stage


@dataclass
class TrialContext:
    """What hooks may look at while one candidate trains on one anchor."""

    genome: Genome
    anchor: str
    model: nn.Module
    device: torch.device
    batch: tuple[torch.Tensor, torch.Tensor]  # a fixed training batch (images, labels)
    baseline_step: float | None = None  # seconds per step of BN-ReLU on this anchor
    step_times: list[float] = field(default_factory=list)


class Hook:
    def before_training(self, ctx: TrialContext) -> None: ...

    def after_step(self, ctx: TrialContext, step: int, loss: float) -> None: ...

    def at_evaluation(self, ctx: TrialContext, step: int, accuracy: float) -> None: ...


def static_check(genome: Genome) -> None:
    """Before any network: the layer must give a finite, non-constant output that depends on x."""
    problem = static_problem(genome)
    if problem:
        raise CandidateRejected(problem, "static")


class Stability(Hook):
    """The paper's stress test: move the convolution weights by gradient ascent on the gradient
    norm ||dL/dθ|| and reject when it passes ``threshold`` within ``steps`` ascent steps.

    Each step ascends log ||dL/dθ|| with a relative step of ``lr`` (every weight tensor moves by
    ``lr`` times its own norm), so the test is the same whatever the weights' scale. It runs on a
    copy of the model: training starts from untouched weights. The norm after the last move is
    computed without the graph for a second derivative (off CUDA graphs): no move follows it.

    Each ascent step stays on the device (no host read inside it); the host reads the norms every
    :data:`CHECK_EVERY_CUDA` steps on CUDA (every step elsewhere) and judges them in order, so the
    verdict and its step are those of checking after every step. On CUDA the step (forward,
    double backward, update) is replayed from a CUDA graph after a short eager warm-up
    (:class:`evaluation.graphs.ReplayedCall`): an eager step of a genome layer launches tens of
    thousands of kernels, and 100 of them on three anchors took 111 s on an H200.
    """

    stage = "stability"

    def __init__(self, steps: int, threshold: float, lr: float, check_every: int | None = None) -> None:
        if check_every is not None and check_every < 1:
            raise ValueError(f"check_every must be at least 1, got {check_every}")
        self.steps, self.threshold, self.lr = steps, threshold, lr
        self.check_every = check_every  # None: CHECK_EVERY_CUDA on CUDA, every step elsewhere

    def before_training(self, ctx: TrialContext) -> None:
        if self.steps <= 0:
            return
        model = copy.deepcopy(ctx.model).train()
        weights = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]
        images, labels = ctx.batch
        cuda = ctx.device.type == "cuda"

        def ascend() -> torch.Tensor:
            return _ascent_step(model, weights, images, labels, self.lr)

        def last() -> torch.Tensor:  # the norm after the final move: no further move to compute
            return _gradient_norm(model, weights, images, labels, create_graph=False)

        if cuda and GRAPH_STABILITY:
            ascend = last = ReplayedCall(ascend)  # one graph serves every step, the last one too
        every = self.check_every or (CHECK_EVERY_CUDA if cuda else 1)
        done = 0
        while done <= self.steps:  # the norm at weights moved ``done`` times, for done = 0 .. steps
            chunk = min(every, self.steps + 1 - done)
            norms = [(last if done + i == self.steps else ascend)() for i in range(chunk)]
            for offset, value in enumerate(torch.stack(norms).tolist()):  # one host read per chunk
                at = done + offset
                if not math.isfinite(value):
                    raise CandidateRejected(f"gradient norm is {value} after {at} ascent steps", self.stage)
                if value > self.threshold:
                    raise CandidateRejected(f"gradient norm {value:.3g} > {self.threshold:.3g} after {at} ascent "
                                            "steps", self.stage)
                if value == 0.0:
                    return  # no gradient reaches the weights: there is nothing to ascend
            done += chunk


GRAPH_STABILITY = True
"""Replay the stability test's ascent step from a CUDA graph on CUDA (off: eager, the same arithmetic)."""

CHECK_EVERY_CUDA = 10
"""Ascent steps between two host reads of the gradient norms on CUDA (a layer that fails is found
at the same step; at most this many steps are computed past it)."""


def _gradient_norm(model: nn.Module, weights: list[torch.Tensor], images: torch.Tensor, labels: torch.Tensor,
                   create_graph: bool) -> torch.Tensor:
    """||dL/dθ|| over the convolution weights (a device scalar, float32); differentiable with
    ``create_graph``, which the ascent needs and the final norm does not."""
    loss = F.cross_entropy(model(images).float(), labels)
    grads = torch.autograd.grad(loss, weights, create_graph=create_graph)
    return torch.sqrt(sum(g.float().square().sum() for g in grads))


def _ascent_step(model: nn.Module, weights: list[torch.Tensor], images: torch.Tensor, labels: torch.Tensor,
                 lr: float) -> torch.Tensor:
    """The gradient norm at the current weights (a device scalar, float32), then one ascent step on
    its log: every weight moves by ``lr`` times its own norm. Reads nothing back to the host."""
    norm = _gradient_norm(model, weights, images, labels, create_graph=True)
    if not norm.requires_grad:  # the gradient does not depend on the weights: nothing to ascend
        return norm.detach()
    ascent = torch.autograd.grad(torch.log(norm), weights)
    with torch.no_grad():
        for w, a in zip(weights, ascent, strict=True):
            w.add_(a * (lr * w.norm() / (a.norm() + 1e-12)))
    return norm.detach()


class FiniteLoss(Hook):
    def after_step(self, ctx: TrialContext, step: int, loss: float) -> None:
        if not math.isfinite(loss):
            raise CandidateRejected(f"loss {loss} at step {step}", "training")


class Quality(Hook):
    """Validation accuracy below ``threshold`` at ``step`` rejects the layer (paper: 20% at 100)."""

    def __init__(self, step: int, threshold: float) -> None:
        self.step, self.threshold = step, threshold

    def at_evaluation(self, ctx: TrialContext, step: int, accuracy: float) -> None:
        if step == self.step and accuracy < self.threshold:
            raise CandidateRejected(f"validation accuracy {accuracy:.3f} < {self.threshold} at step {step} on "
                                    f"{ctx.anchor}", "quality")


class StepBudget(Hook):
    """A step much slower than BN-ReLU's on the same anchor rejects the layer."""

    def __init__(self, ratio: float, timed_steps: int) -> None:
        self.ratio, self.timed_steps = ratio, timed_steps

    def after_step(self, ctx: TrialContext, step: int, loss: float) -> None:
        if self.ratio <= 0 or ctx.baseline_step is None or len(ctx.step_times) != self.timed_steps + 1:
            return
        own = sorted(ctx.step_times[1:])[len(ctx.step_times[1:]) // 2]  # median, first step excluded
        if own > self.ratio * ctx.baseline_step:
            raise CandidateRejected(f"step takes {own * 1e3:.0f} ms, {own / ctx.baseline_step:.1f}x BN-ReLU's "
                                    f"(limit {self.ratio}x)", "budget")


def default_hooks(cfg: RejectionConfig) -> list[Hook]:
    """Cheapest first: stability before training, then loss, step time and quality checks."""
    return [Stability(cfg.stability_steps, cfg.stability_threshold, cfg.stability_lr), FiniteLoss(),
            StepBudget(cfg.max_step_ratio, cfg.timing_steps), Quality(cfg.quality_step, cfg.quality_threshold)]


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


class Stopwatch:
    """Seconds per stage, accumulated; a stage's time counts even when it raises."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start
