"""Validation batch size on this machine: one evaluator evaluates the same layers with validation
in batches of ``--sizes`` images, interleaved round by round, and prints each evaluation's
validation seconds (the stage clock) and total seconds, with the ratios to the first size.

    python benchmarks/val_batch.py --data ../shared/data/cifar10 [--preset cpu] [--sizes 500,50]
        [--layers bn_relu] [--rounds 2] [--threads 2]

``evaluation.data.default_val_batch`` picks 50 on a CPU and 500 on an accelerator (``data.val_batch``
in a config overrides it); this script is how that choice was measured (``docs/results.md`` §5i).
Every layer is per sample in eval mode, so the size changes no verdict; the script prints any
accuracy that differs from the first size's.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from evaluation import config as cfgmod
from evaluation.evaluate import Evaluator
from gp import zoo


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="cifar10", help="data source (offline: ../shared/data/cifar10)")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--sizes", default="500,50", help="validation batch sizes, the first the reference")
    ap.add_argument("--layers", default="bn_relu", help="zoo layers (default %(default)s)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if not sizes or min(sizes) < 1:
        ap.error(f"--sizes must be positive integers, got {args.sizes!r}")
    layers = [n.strip() for n in args.layers.split(",") if n.strip()]
    for n in layers:
        zoo.get(n)  # raises naming the known layers
    torch.set_num_threads(args.threads)
    ev = Evaluator(cfgmod.override(cfgmod.load(args.preset), **{"data.source": args.data}))
    data = ev.data  # loaded before the first layer, not timed
    for i in range(len(ev.config.anchors)):
        ev.baseline_step(i)  # BN-ReLU's step time, measured once, not timed
    seconds: dict[tuple[str, int], list[tuple[float, float]]] = {}
    accuracies: dict[tuple[str, int], dict] = {}
    print(f"preset {args.preset}, device {ev.device}, threads {args.threads}; validation batch sizes {sizes}")
    for r in range(args.rounds):
        for name in layers:
            for size in sizes if r % 2 == 0 else sizes[::-1]:
                data.val_batch = size
                started = time.perf_counter()
                result = ev(zoo.get(name))
                total = time.perf_counter() - started
                val = result.timings.get("validation", 0.0)
                seconds.setdefault((name, size), []).append((val, total))
                accuracies.setdefault((name, size), result.accuracies)
                print(f"  round {r}  {name:<12} batch {size:>4}: validation {val:6.1f} s, total {total:6.1f} s, "
                      f"{result.status}", flush=True)
    print(f"\n{'layer':<12} {'batch':>5} {'validation s':>13} {'total s':>8} {'val ratio':>9} {'total ratio':>11}")
    for name in layers:
        ref_val = statistics.median(v for v, _ in seconds[(name, sizes[0])])
        ref_total = statistics.median(t for _, t in seconds[(name, sizes[0])])
        for size in sizes:
            val = statistics.median(v for v, _ in seconds[(name, size)])
            total = statistics.median(t for _, t in seconds[(name, size)])
            print(f"{name:<12} {size:>5} {val:>13.1f} {total:>8.1f} {ref_val / max(val, 1e-9):>8.2f}x "
                  f"{ref_total / total:>10.2f}x")
        differ = [s for s in sizes if accuracies[(name, s)] != accuracies[(name, sizes[0])]]
        if differ:
            print(f"  accuracies differ from batch {sizes[0]}'s at batch {differ}: "
                  f"{accuracies[(name, sizes[0])]} against {[accuracies[(name, s)] for s in differ]}")
    print("(ratios: the first size's seconds over each size's, medians over rounds; above 1x is faster)")


if __name__ == "__main__":
    main()
