"""Proxy training of one layer inside one anchor network: read it top to bottom.

A fresh model per (layer, anchor); SGD with Nesterov momentum; a linear warm-up then cosine decay
of the learning rate; no weight decay on norm-act parameters or biases; bfloat16 autocast and
channels_last on CUDA, float32 on CPU; validation accuracy at the configured steps; hooks called
after every step and at every evaluation point.
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
from evaluation.hooks import Hook, Stopwatch, TrialContext
from gp import Affine, GenomeLayer

NORM_MODULES = (GenomeLayer, Affine, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)

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


def autocast(device: torch.device):
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


@torch.no_grad()
def accuracy(model: nn.Module, data: DeviceData, limit: int | None, batch_size: int = 500) -> float:
    model.eval()
    correct = seen = 0
    for images, labels in data.val_batches(batch_size):
        if limit is not None and seen >= limit:
            break
        with autocast(data.device):
            logits = model(images)
        correct += int((logits.argmax(1) == labels).sum())
        seen += len(labels)
    model.train()
    return correct / max(1, seen)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train(ctx: TrialContext, data: DeviceData, cfg: TrainConfig, *, eval_at: set[int], val_limit: int | None,
          hooks: list[Hook], seed: int, clock: Stopwatch, progress: Progress | None = None) -> dict[int, float]:
    """Train ``ctx.model`` for ``cfg.steps`` steps; returns {step: validation accuracy}."""
    model, device = ctx.model, ctx.device
    model.train()
    opt = torch.optim.SGD(param_groups(model, cfg.weight_decay), lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg.steps, cfg.warmup))
    batches = data.batches(cfg.batch_size, seed)
    curve: dict[int, float] = {}
    for step in range(1, cfg.steps + 1):
        start = time.perf_counter()
        with clock("training"):
            images, labels = next(batches)
            with autocast(device):
                loss = F.cross_entropy(model(images).float(), labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            value = float(loss.detach())  # synchronises, as the loss check needs it anyway
            _sync(device)
        ctx.step_times.append(time.perf_counter() - start)
        for hook in hooks:
            hook.after_step(ctx, step, value)
        if progress is not None:
            progress({"anchor": ctx.anchor, "step": step, "steps": cfg.steps, "loss": value})
        if step in eval_at:
            with clock("validation"):
                curve[step] = accuracy(model, data, val_limit)
            for hook in hooks:
                hook.at_evaluation(ctx, step, curve[step])
    return curve


def time_steps(model: nn.Module, data: DeviceData, cfg: TrainConfig, steps: int, seed: int) -> float:
    """Median seconds per training step over ``steps`` steps after one warm-up step."""
    ctx = TrialContext(genome=None, anchor="baseline", model=model, device=data.device, batch=None)  # type: ignore[arg-type]
    train(ctx, data, dataclasses.replace(cfg, steps=steps + 1), eval_at=set(), val_limit=None, hooks=[], seed=seed,
          clock=Stopwatch())
    times = sorted(ctx.step_times[1:])
    return times[len(times) // 2]
