"""One norm-act site, forward + backward, in each form a genome can take, against native
``BatchNorm2d`` + ``ReLU``, measured side by side in one run.

    python benchmarks/layer_speed.py [--shape 32,64,16,16] [--threads 1] [--device cpu]
                                     [--layers bn_relu evonorm_b0 evonorm_s0] [--no-compile]
                                     [--shapes per-resolution|dynamic]

Forms: ``interpreted`` (the former op-by-op layer, :class:`gp.interpreter.InterpretedLayer`),
``generated`` (:func:`gp.compile_layer`, the FX code that networks use) and ``compiled``
(the generated layer's code through ``torch.compile``, as the evaluator runs it:
:func:`gp.compiler.use_compiled`, shape policy ``--shapes``; its compile time, first call
included, is printed apart). Rounds interleave
the forms, so drift on a shared machine hits all alike; each ratio is the median over rounds of
(form's time / native time in the same round).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from evaluation.evaluate import resolve_device
from gp import compile_layer, zoo
from gp.compiler import SHAPE_POLICIES, SHAPES, use_compiled
from gp.interpreter import InterpretedLayer


def timer(layer: nn.Module, x: torch.Tensor, reps: int):
    """Seconds per forward + backward of ``layer`` on ``x`` (training mode)."""
    layer.train()
    x = x.detach().requires_grad_(True)
    grad = torch.randn_like(x)
    device = x.device

    def run() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(reps):
            layer(x).backward(grad)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - start) / reps

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="32,64,16,16", help="N,C,H,W (default: 32,64,16,16)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--layers", nargs="+", default=["bn_relu", "evonorm_b0", "evonorm_s0"])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--reps", type=int, default=10, help="forward+backward passes per timing")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile form")
    ap.add_argument("--shapes", default=SHAPES, choices=SHAPE_POLICIES,
                    help=f"the compiled form's shape policy (gp.compiler.SHAPES; default: {SHAPES})")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    dtype = getattr(torch, args.dtype)
    n, c, h, w = (int(v) for v in args.shape.split(","))
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(n, c, h, w, generator=gen) * 2 + 1).to(device=device, dtype=dtype)
    if args.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    native = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU()).to(device=device, dtype=dtype)
    forms = ["interpreted", "generated"] + ([] if args.no_compile else ["compiled"])

    timers = {"native": timer(native, x, args.reps)}
    compile_s = {}
    for name in args.layers:
        genome = zoo.get(name)
        timers[(name, "interpreted")] = timer(InterpretedLayer(genome, c).to(device, dtype), x, args.reps)
        timers[(name, "generated")] = timer(compile_layer(genome, c).to(device, dtype), x, args.reps)
        if "compiled" in forms:
            layer = compile_layer(genome, c).to(device, dtype)
            use_compiled(layer, shapes=args.shapes)  # the evaluator's path: the genome's shared compiled code
            start = time.perf_counter()
            timers[(name, "compiled")] = timer(layer, x, args.reps)
            timers[(name, "compiled")]()  # compiles forward and backward
            compile_s[name] = time.perf_counter() - start
    for t in timers.values():
        t()  # warm-up (and the second compiled layer's cache hit)

    seconds: dict = {k: [] for k in timers}
    ratios: dict = {k: [] for k in timers}
    for _ in range(args.rounds):
        times = {k: t() for k, t in timers.items()}
        for k, s in times.items():
            seconds[k].append(s)
            ratios[k].append(s / times["native"])

    def cell(key) -> str:
        return f"{statistics.median(seconds[key]) * 1e3:7.2f} ms {statistics.median(ratios[key]):5.2f}x"

    layout = "channels_last" if args.channels_last else "contiguous"
    print(f"device {device}, {torch.get_num_threads()} thread(s), x {tuple(x.shape)} {args.dtype} {layout}, "
          f"forward+backward, median of {args.rounds} rounds x {args.reps} passes; ratio = time / native")
    print(f"native BatchNorm2d+ReLU: {statistics.median(seconds['native']) * 1e3:.2f} ms")
    print(f"{'layer':<12} " + " ".join(f"{f:>17}" for f in forms) + ("   compile s" if compile_s else ""))
    for name in args.layers:
        row = f"{name:<12} " + " ".join(f"{cell((name, f)):>17}" for f in forms)
        if name in compile_s:
            row += f"   {compile_s[name]:9.1f}"
        print(row)


if __name__ == "__main__":
    main()
