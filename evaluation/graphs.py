"""Training steps replayed from a CUDA graph: one launch a step instead of thousands.

The narrow CIFAR anchors do not fill a modern GPU. A step is bound by the host launching kernels,
not by the device running them (docs/results.md §5b: a native ResNet-50 step of the paper preset
takes 25.7 ms on an H200, and a genome layer launches 20-45 kernels forward where BatchNorm
launches two). Capturing the whole step (forward, backward and the optimiser's update) in a CUDA
graph and replaying it removes the per-kernel host cost.

What a replayable step needs, and how it is met here:

- fixed addresses: every batch is copied into the same input tensors; gradients are allocated
  inside the graph's memory pool and rewritten in place by every replay;
- no host reads inside the step: the loss stays on the device (the trainer reads losses in
  batches, as it does without graphs);
- a learning rate that changes without recapturing: :class:`StaticSGD` reads it from a device
  tensor, written before each replay (``torch.optim.SGD`` reads a Python float, which a graph
  would freeze at its capture value);
- warm-up before capture: the first :data:`WARMUP_STEPS` steps of a training run eagerly on a
  side stream (lazy initialisations such as cuBLAS workspaces must not happen inside a capture),
  and they are real steps of the training;
- autocast without its weight cache, which a graph must not capture.

Dropout draws from the default CUDA generator, which PyTorch registers with every graph, so each
replay draws new numbers. A capture that fails leaves the training eager (same optimiser, same
numerics) and says why.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

WARMUP_STEPS = 3
"""Eager steps, on a side stream, before the step is captured (and again after ``reset``)."""


class StaticSGD:
    """SGD with Nesterov momentum and weight decay, the arithmetic of ``torch.optim.SGD(nesterov=True,
    dampening=0)``, with its learning rate in a device tensor (:attr:`lr`, set by :meth:`set_lr`):
    its update is a fixed sequence of kernels that a CUDA graph can capture and replay at any rate.

    The rate is kept in the parameters' dtype, as ``torch.optim.SGD`` casts its Python float.
    The momentum buffers start at zero, which gives ``torch.optim.SGD``'s first step exactly
    (``buf = momentum * 0 + grad = grad``). Parameters without a gradient are skipped, as there.
    """

    def __init__(self, param_groups: list[dict], momentum: float, device: torch.device) -> None:
        self.groups = [(list(g["params"]), float(g["weight_decay"])) for g in param_groups]
        self.momentum = momentum
        self.lr = torch.zeros((), device=device, dtype=self.groups[0][0][0].dtype)  # the parameters' dtype
        self.buffers = [[torch.zeros_like(p) for p in params] for params, _ in self.groups]

    def set_lr(self, value: float) -> None:
        self.lr.fill_(value)  # a kernel on CUDA, not a host synchronisation

    def zero_grad(self) -> None:
        for params, _ in self.groups:
            for p in params:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for (params, decay), buffers in zip(self.groups, self.buffers, strict=True):
            live = [(p, b) for p, b in zip(params, buffers, strict=True) if p.grad is not None]
            if not live:
                continue
            ps, bufs = [p for p, _ in live], [b for _, b in live]
            grads = [p.grad for p in ps]
            if decay:
                grads = torch._foreach_add(grads, ps, alpha=decay)
            torch._foreach_mul_(bufs, self.momentum)
            torch._foreach_add_(bufs, grads)
            update = torch._foreach_add(grads, bufs, alpha=self.momentum)
            torch._foreach_mul_(update, self.lr)
            torch._foreach_sub_(ps, update)


def _loss(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    with torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False):
        return F.cross_entropy(model(images).float(), labels)


class GraphedStep:
    """One training step of ``model`` with ``opt``, run eagerly for :data:`WARMUP_STEPS` calls
    on a side stream, then captured and replayed. Call it with a batch; it returns the step's
    loss as a device tensor of its own. :meth:`reset` drops the graph (after the model's modules
    change, e.g. to compiled code): the next calls warm up and capture again.
    """

    def __init__(self, model: nn.Module, opt: StaticSGD) -> None:
        self.model, self.opt = model, opt
        self.graph: torch.cuda.CUDAGraph | None = None
        self.failed: str | None = None  # why capture failed; then every step stays eager
        self._eager_left = WARMUP_STEPS
        self._side = torch.cuda.Stream()

    def reset(self) -> None:
        self.graph, self._eager_left = None, WARMUP_STEPS

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.graph is None and (self._eager_left > 0 or self.failed is not None):
            self._eager_left -= 1
            return self._eager(images, labels)
        if self.graph is None:
            self._capture(images, labels)
            if self.graph is None:
                return self._eager(images, labels)
        self._images.copy_(images)
        self._labels.copy_(labels)
        self.graph.replay()
        return self._loss.clone()

    def _eager(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        def step() -> torch.Tensor:
            self.opt.zero_grad()
            loss = _loss(self.model, images, labels)
            loss.backward()
            self.opt.step()
            return loss.detach()

        return _on_side_stream(self._side, step)

    def _capture(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self._images, self._labels = images.clone(), labels.clone()
        self.opt.zero_grad()  # gradients are then allocated in the graph's pool, rewritten by each replay

        def step() -> torch.Tensor:
            loss = _loss(self.model, self._images, self._labels)
            loss.backward()
            self.opt.step()
            return loss

        graph, loss, self.failed = _captured(step, "training eagerly", stacklevel=2)
        if graph is None:
            self.opt.zero_grad()
            return
        self.graph, self._loss = graph, loss.detach()


class ReplayedCall:
    """A call with no arguments whose work stays on the device (its inputs live at fixed addresses,
    e.g. a model's weights updated in place) and which returns one tensor: run eagerly
    :data:`WARMUP_STEPS` times on a side stream, then captured once and replayed. Each call returns
    its result as a tensor of its own. A capture that fails leaves it eager and says why
    (:attr:`failed`). The stability test's ascent step runs through it on CUDA."""

    def __init__(self, fn) -> None:
        self.fn = fn
        self.graph: torch.cuda.CUDAGraph | None = None
        self.failed: str | None = None
        self._eager_left = WARMUP_STEPS
        self._side = torch.cuda.Stream()

    def __call__(self) -> torch.Tensor:
        if self.graph is None and self._eager_left <= 0 and self.failed is None:
            self.graph, self._out, self.failed = _captured(self.fn, "running eagerly", stacklevel=1)
        if self.graph is None:
            self._eager_left -= 1
            return _on_side_stream(self._side, self.fn)
        self.graph.replay()
        return self._out.clone()


def _on_side_stream(side: torch.cuda.Stream, fn):
    """``fn()`` run on stream ``side`` after the current stream's queued work, the current stream
    then waiting for it: how a graph's warm-up runs (lazy initialisations stay out of the capture)."""
    main = torch.cuda.current_stream()
    side.wait_stream(main)
    with torch.cuda.stream(side):
        out = fn()
    main.wait_stream(side)
    return out


def _captured(fn, fallback: str, stacklevel: int) -> tuple[torch.cuda.CUDAGraph | None, object, str | None]:
    """``fn`` captured in a new CUDA graph: (graph, what ``fn`` returned, None), or, when capture
    fails, (None, None, why) with a warning that says the caller goes on ``fallback``, shown at the
    frame ``stacklevel`` levels up (1: the caller)."""
    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(graph):
            out = fn()
    except Exception as exc:  # noqa: BLE001 - any failure to capture leaves the caller eager
        failed = f"{type(exc).__name__}: {exc}"
        warnings.warn(f"CUDA graph capture failed, {fallback}: {failed}", RuntimeWarning, stacklevel=stacklevel + 1)
        return None, None, failed
    return graph, out, None
