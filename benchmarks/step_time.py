"""Training-step time of every anchor with each zoo layer, relative to the anchor's own BN-ReLU
(BN-Swish for EfficientNet), measured side by side in one run.

    python benchmarks/step_time.py [--preset cpu] [--device cpu] [--batch 32] [--rounds 5]
        [--layers bn_relu,evonorm_b0,evonorm_s0] [--compiled] [--dynamic] [--floor] [--graph]
        [--channels-last]

Rounds interleave the layers, so drift on a noisy machine hits all of them alike; the ratio is
the median over rounds of (layer step time / reference step time in the same round).
``--compiled`` adds each layer in ``torch.compile``'d form (``gp.compiler.use_compiled``,
training mode; columns ``NAME*``); compilation happens in the warm-up step and is not timed.
``NAME*`` uses the default shape policy (batch and channels dynamic, one graph per resolution);
``--dynamic`` adds ``NAME*d``, compiled with every size dynamic (one graph for every site).
``--floor`` adds ``free``: every norm-act site an identity, the step time that a layer costing
nothing would leave (Amdahl's bound: no candidate, however fast, makes a step cheaper than this,
so ``NAME / free`` is the most a faster layer can save).
``--graph`` (CUDA) adds every form, the reference included, with its step replayed from a CUDA
graph (``evaluation.graphs``; columns ``NAME^``, ``reference^``): warm-up and capture happen in
the warm-up call. Every ratio is over the eager reference, so ``reference^`` is what capture
saves native BN-ReLU and ``NAME^ / reference^`` compares like with like.
``--channels-last`` (CPU) adds ``reference@`` and ``NAME@``: the model and its input in
channels_last, eager, over the same contiguous reference (the evaluator runs CPU steps
contiguous and CUDA steps channels_last).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

import architectures
from evaluation import config as cfgmod
from evaluation.evaluate import resolve_device
from evaluation.graphs import WARMUP_STEPS, GraphedStep, StaticSGD
from evaluation.train import autocast
from gp import compiler, layer_factory, zoo


def per_step(step, device, steps):
    """A timer: mean seconds of ``steps`` calls of ``step``, the device drained at the end."""
    def run() -> float:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - start) / steps

    return run


def step_timer(model, batch, device, steps):
    x, y = batch
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)

    def step() -> None:
        with autocast(device):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return per_step(step, device, steps)


def graph_step_timer(model, batch, device, steps):
    """The same step (bf16 autocast, Nesterov SGD) replayed from a CUDA graph."""
    opt = StaticSGD([{"params": list(model.parameters()), "weight_decay": 0.0}], 0.9, device)
    opt.set_lr(0.01)
    graphed = GraphedStep(model, opt)
    return per_step(lambda: graphed(*batch), device, steps)


def free_norm_act(num_features: int, *, apply_act: bool = True, device=None, dtype=None) -> torch.nn.Module:
    """A norm-act site that costs nothing: the floor of any layer's step time."""
    return torch.nn.Identity()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu", help="widths from this preset (default: cpu)")
    ap.add_argument("--device", default=None)
    ap.add_argument("--batch", type=int, default=None, help="default: the preset's batch size")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=3, help="steps per timing")
    ap.add_argument("--layers", default=",".join(zoo.names()), help="zoo layers (default: all)")
    ap.add_argument("--anchors", default=None, help="only these anchors of the preset, e.g. resnet50")
    ap.add_argument("--compiled", action="store_true", help="also time each layer compiled (NAME*)")
    ap.add_argument("--dynamic", action="store_true",
                    help="also time each layer compiled with every size dynamic (NAME*d; NAME* has batch "
                         "and channels dynamic, one graph per resolution: gp.compiler.SHAPES)")
    ap.add_argument("--floor", action="store_true",
                    help="also time the anchor with every norm-act an identity (free): the bound on what a "
                         "faster layer can save")
    ap.add_argument("--graph", action="store_true",
                    help="CUDA: also time every form replayed from a CUDA graph (NAME^)")
    ap.add_argument("--channels-last", action="store_true",
                    help="CPU: also time the reference and each eager layer with the model and its input in "
                         "channels_last (NAME@; CUDA runs every form so already)")
    args = ap.parse_args()
    names = [n.strip() for n in args.layers.split(",") if n.strip()]
    for n in names:
        zoo.get(n)  # raises naming the known layers
    cfg = cfgmod.load(args.preset)
    device = resolve_device(args.device or cfg.device)
    batch = args.batch or cfg.train.batch_size
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, 32, 32, generator=gen).to(device)
    data = (images, torch.randint(0, 10, (batch,), generator=gen).to(device))
    if device.type == "cuda":
        data = (data[0].contiguous(memory_format=torch.channels_last), data[1])
    if args.channels_last and device.type == "cuda":
        ap.error("--channels-last is for CPU runs: on CUDA every form already runs channels_last")
    data_cl = (data[0].contiguous(memory_format=torch.channels_last), data[1])
    if args.graph and device.type != "cuda":
        ap.error(f"--graph needs a CUDA device, got {device}")
    if args.graph and args.steps <= WARMUP_STEPS:
        ap.error(f"--graph needs --steps above {WARMUP_STEPS}: the warm-up call must reach the capture")
    layers = ["reference"] + names + ([f"{n}*" for n in names] if args.compiled else [])
    layers += [f"{n}*d" for n in names] if args.dynamic else []
    layers += ["free"] if args.floor else []
    layers += [f"{n}@" for n in ["reference", *names]] if args.channels_last else []
    layers += [f"{n}^" for n in layers] if args.graph else []
    print(f"device {device}, batch {batch}, preset {args.preset}; ratio = step time / reference BN-act step time")
    print(f"{'anchor':<16} {'width':>6} {'reference ms':>13} " + " ".join(f"{n:>10}" for n in layers[1:]))
    anchors = [a for a in cfg.anchors if args.anchors is None or a.arch in args.anchors.split(",")]
    if not anchors:
        ap.error(f"--anchors {args.anchors!r} names none of the preset's: {', '.join(a.arch for a in cfg.anchors)}")
    for anchor in anchors:
        timers = {}
        for name in layers:
            form = name.rstrip("^")
            channels_last = form.endswith("@")
            form = form.removesuffix("@")
            base = form.removesuffix("*d").removesuffix("*")
            if base == "reference":
                norm_act = architectures.reference_norm_act(anchor.arch)
            elif base == "free":
                norm_act = free_norm_act
            else:
                norm_act = layer_factory(zoo.get(base))
            torch.manual_seed(0)
            model = architectures.create_arch(anchor.arch, norm_act, width=anchor.width).to(device)
            if form.endswith("*"):
                compiler.use_compiled(model, shapes="per-resolution")
            elif form.endswith("*d"):
                compiler.use_compiled(model, shapes="dynamic")
            if device.type == "cuda" or channels_last:
                model = model.to(memory_format=torch.channels_last)
            timer = graph_step_timer if name.endswith("^") else step_timer
            timers[name] = timer(model, data_cl if channels_last else data, device, args.steps)
            timers[name]()  # warm-up
        ratios = {n: [] for n in layers}
        ref_times = []
        for _ in range(args.rounds):
            times = {n: timers[n]() for n in layers}
            ref_times.append(times["reference"])
            for n in layers:
                ratios[n].append(times[n] / times["reference"])
        print(f"{anchor.arch:<16} {anchor.width:>6g} {statistics.median(ref_times) * 1e3:>13.1f} "
              + " ".join(f"{statistics.median(ratios[n]):>10.2f}" for n in layers[1:]))


if __name__ == "__main__":
    main()
