"""Proxy training of one layer inside one anchor network: read it top to bottom.

A fresh model per (layer, anchor), trained in segments that can be resumed (:class:`Training`);
SGD with Nesterov momentum; a linear warm-up then cosine decay of the learning rate; no weight
decay on norm-act parameters or biases; bfloat16 autocast and channels_last on CUDA, float32 on
CPU; validation accuracy at the configured steps; hooks called after every step and at every
evaluation point.

On CUDA the host does not wait for the device after every step: losses stay on the device and
steps are timed by CUDA events; every ``sync_every`` steps (:data:`SYNC_EVERY_CUDA` by default),
at every evaluation point and at the end of a segment, one transfer reads them back and the hooks
see each step in order, with its own loss and time. A non-finite loss is therefore caught a few
steps late, never missed, and reported at the step where it happened. On CPU every step is read at
once (nothing to overlap). With ``train.cuda_graph`` on CUDA each step after a short eager warm-up
is replayed from a CUDA graph, with :class:`evaluation.graphs.StaticSGD` in place of
``torch.optim.SGD`` (the same update; the learning rate read from the device).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from architectures import create_arch
from evaluation.config import AnchorConfig, TrainConfig
from evaluation.data import DeviceData
from evaluation.graphs import GraphedStep, StaticSGD
from evaluation.hooks import Hook, Stopwatch, TrialContext
from gp import Affine, GenomeLayer
from gp.interpreter import InterpretedLayer

NORM_MODULES = (GenomeLayer, InterpretedLayer, Affine, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)

Progress = Callable[[dict], None]


def build_model(anchor: AnchorConfig, norm_act, device: torch.device, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = create_arch(anchor.arch, norm_act, width=anchor.width).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on convolution and linear weights only."""
    no_decay = {id(p) for m in model.modules() if isinstance(m, NORM_MODULES) for p in m.parameters(recurse=False)}
    no_decay |= {id(p) for name, p in model.named_parameters() if name.endswith("bias")}
    params = list(model.parameters())
    return [{"params": [p for p in params if id(p) not in no_decay], "weight_decay": weight_decay},
            {"params": [p for p in params if id(p) in no_decay], "weight_decay": 0.0}]


def lr_factor(step: int, total: int, warmup: float) -> float:
    """Linear warm-up over ``warmup * total`` steps, then cosine decay to 0 at ``total``."""
    w = max(1, int(warmup * total))
    if step < w:
        return (step + 1) / w
    return 0.5 * (1 + math.cos(math.pi * (step - w) / max(1, total - w)))


SYNC_EVERY_CUDA = 16
"""Steps between two reads of the losses on CUDA (one host-device synchronisation each)."""


def autocast(device: torch.device):
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


@torch.no_grad()
def accuracy(model: nn.Module, data: DeviceData, limit: int | None, batch_size: int | None = None) -> float:
    """Top-1 accuracy on the first ``limit`` validation images (all of them when None), in batches
    of ``batch_size`` (default: ``data.val_batch``)."""
    model.eval()
    correct, seen = torch.zeros((), dtype=torch.int64, device=data.device), 0
    for images, labels in data.val_batches(batch_size or data.val_batch):
        if limit is not None:
            if seen >= limit:
                break
            images, labels = images[:limit - seen], labels[:limit - seen]  # exactly ``limit`` images
        with autocast(data.device):
            logits = model(images)
        correct += (logits.argmax(1) == labels).sum()  # stays on the device: one read at the end
        seen += len(labels)
    model.train()
    return int(correct) / max(1, seen)


class _StepTimer:
    """Seconds of one training step: wall clock on CPU, CUDA events on CUDA (read after a sync)."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        if self.cuda:
            self.start, self.end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            self.start.record()
        else:
            self.begin, self.seconds_ = time.perf_counter(), None

    def stop(self) -> _StepTimer:
        if self.cuda:
            self.end.record()
        else:
            self.seconds_ = time.perf_counter() - self.begin
        return self

    def seconds(self) -> float:
        """Valid once the device has finished the step (after the batch's loss is read)."""
        return self.start.elapsed_time(self.end) / 1e3 if self.cuda else self.seconds_


def _rng_state(device: torch.device) -> tuple:
    return torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None


def _set_rng_state(device: torch.device, state: tuple) -> None:
    torch.set_rng_state(state[0])
    if device.type == "cuda":
        torch.cuda.set_rng_state(state[1], device)


class Training:
    """One layer training in one anchor network, in segments: ``advance(to)`` runs the steps up to
    ``to``. Model, optimiser, schedule, batch order and the global random state (dropout) carry over
    from one segment to the next and are kept apart from other trainings, so a run cut into
    segments, interleaved with other anchors' segments, gives exactly what one run gives.
    """

    def __init__(self, ctx: TrialContext, data: DeviceData, cfg: TrainConfig, *, eval_at: set[int],
                 val_limit: int | None, hooks: list[Hook], seed: int, clock: Stopwatch,
                 progress: Progress | None = None, sync_every: int | None = None) -> None:
        if sync_every is not None and sync_every < 1:
            raise ValueError(f"sync_every must be at least 1, got {sync_every}")
        self.ctx, self.data, self.cfg = ctx, data, cfg
        self.eval_at, self.val_limit, self.hooks = eval_at, val_limit, hooks
        self.clock, self.progress = clock, progress
        groups = param_groups(ctx.model, cfg.weight_decay)
        self.graphed: GraphedStep | None = None  # the step replayed from a CUDA graph (train.cuda_graph)
        if cfg.cuda_graph and ctx.device.type == "cuda":
            self.opt = StaticSGD(groups, cfg.momentum, ctx.device)
            self.graphed = GraphedStep(ctx.model, self.opt)
        else:
            self.opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
            self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: lr_factor(s, cfg.steps, cfg.warmup))
        self.batches = data.batches(cfg.batch_size, seed)
        self.step = 0
        self.curve: dict[int, float] = {}  # {step: validation accuracy}
        self._rng = _rng_state(ctx.device)
        self.sync_every = sync_every or (SYNC_EVERY_CUDA if ctx.device.type == "cuda" else 1)
        self._pending: list[tuple[int, torch.Tensor, _StepTimer]] = []  # steps the host has not read yet

    def advance(self, until: int) -> dict[int, float]:
        """Train up to step ``min(until, cfg.steps)``; returns the curve so far."""
        ctx, device = self.ctx, self.ctx.device
        outside = _rng_state(device)
        _set_rng_state(device, self._rng)
        ctx.model.train()
        try:
            for step in range(self.step + 1, min(until, self.cfg.steps) + 1):
                self._step(step)
            self._read()
        finally:
            self._rng = _rng_state(device)
            _set_rng_state(device, outside)
        return self.curve

    def _step(self, step: int) -> None:
        model, device = self.ctx.model, self.ctx.device
        with self.clock("training"):
            timer = _StepTimer(device)
            images, labels = next(self.batches)
            if self.graphed is not None:
                self.opt.set_lr(self.cfg.lr * lr_factor(step - 1, self.cfg.steps, self.cfg.warmup))
                loss = self.graphed(images, labels)
            else:
                with autocast(device):
                    loss = F.cross_entropy(model(images).float(), labels)
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                self.sched.step()
            self._pending.append((step, loss.detach(), timer.stop()))
        self.step = step
        if len(self._pending) >= self.sync_every or step in self.eval_at:
            self._read()
        if step in self.eval_at:
            with self.clock("validation"):
                self.curve[step] = accuracy(model, self.data, self.val_limit)
            for hook in self.hooks:
                hook.at_evaluation(self.ctx, step, self.curve[step])

    def recapture(self) -> None:
        """The model's modules changed (e.g. to compiled code): capture the step again before
        replaying it (a no-op without ``train.cuda_graph``)."""
        if self.graphed is not None:
            self.graphed.reset()

    def _read(self) -> None:
        """Read the pending steps' losses back in one transfer and show each step to the hooks."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        with self.clock("training"):
            losses = torch.stack([loss.float() for _, loss, _ in pending]).tolist()  # the one synchronisation
        for (step, _, timer), value in zip(pending, losses, strict=True):
            self.ctx.step_times.append(timer.seconds())
            try:
                for hook in self.hooks:
                    hook.after_step(self.ctx, step, value)
            except BaseException:
                self.step = step  # a rejected training ends here: report the step the hook saw
                raise
            if self.progress is not None:
                self.progress({"anchor": self.ctx.anchor, "step": step, "steps": self.cfg.steps, "loss": value})


def train(ctx: TrialContext, data: DeviceData, cfg: TrainConfig, *, eval_at: set[int], val_limit: int | None,
          hooks: list[Hook], seed: int, clock: Stopwatch, progress: Progress | None = None) -> dict[int, float]:
    """Train ``ctx.model`` for ``cfg.steps`` steps in one go; returns {step: validation accuracy}."""
    run = Training(ctx, data, cfg, eval_at=eval_at, val_limit=val_limit, hooks=hooks, seed=seed, clock=clock,
                   progress=progress)
    return run.advance(cfg.steps)


def time_steps(model: nn.Module, data: DeviceData, cfg: TrainConfig, steps: int, seed: int) -> float:
    """Median seconds per training step over ``steps`` steps after one warm-up step."""
    ctx = TrialContext(genome=None, anchor="baseline", model=model, device=data.device, batch=None)  # type: ignore[arg-type]
    train(ctx, data, dataclasses.replace(cfg, steps=steps + 1), eval_at=set(), val_limit=None, hooks=[], seed=seed,
          clock=Stopwatch())
    times = sorted(ctx.step_times[1:])
    return times[len(times) // 2]
