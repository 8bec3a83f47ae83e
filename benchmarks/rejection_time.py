"""How fast bad layers are rejected, relative to a full proxy evaluation of BN-ReLU, per stage.

    python benchmarks/rejection_time.py [--preset cpu] [--data ../shared/data/cifar10] [--samples 30]
                                        [--set rejection.max_seconds=30]

Evaluates BN-ReLU in full, then a sample of random layers of the paper's space (the layers a
search starts from: most are bad) with the same Evaluator, in one run. Prints, per deciding
stage, how many layers stopped there and their mean evaluation time as a fraction of BN-ReLU's.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import numpy as np

from evaluation import config as cfgmod
from evaluation.evaluate import Evaluator
from evaluation.hooks import default_hooks
from evaluation.result import EvalResult
from gp import random_genome, zoo


def _reference(ev: Evaluator) -> tuple[EvalResult, float]:
    """BN-ReLU's evaluation, timed, and what it printed: per-stage seconds, verdict, curves."""
    start = time.perf_counter()
    ref = ev(zoo.get("bn_relu"))
    seconds = time.perf_counter() - start
    print(f"BN-ReLU full evaluation: {seconds:.1f} s ({ref.status.value}; "
          + ", ".join(f"{k} {v:.1f}s" for k, v in ref.timings.items()) + ")", flush=True)
    if ref.reason:
        print(f"BN-ReLU {ref.status.value} at stage {ref.stage} on {ref.anchor}, step {ref.step}: {ref.reason}")
    for anchor, curve in ref.curves.items():
        print(f"BN-ReLU on {anchor}: validation accuracy "
              + ", ".join(f"{v:.3f} at step {s}" for s, v in sorted(curve.items())), flush=True)
    return ref, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--data", default=None)
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sample-seconds", type=float, default=0.0,
                    help="wall-clock limit of each random layer's evaluation (rejection.max_seconds for the "
                         "sample only; BN-ReLU is evaluated in full): survivors of the quality stage then "
                         "show as 'budget' rather than each costing a full training")
    ap.add_argument("--time-rejected-reference", action="store_true",
                    help="if BN-ReLU fails the quality check, evaluate it again without that check, so that "
                         "the time of a full evaluation is still measured")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a preset key, e.g. --set rejection.max_seconds=30 (repeatable)")
    args = ap.parse_args()
    try:
        cfg = cfgmod.load(args.preset)
        if args.data:
            cfg = cfgmod.override(cfg, **{"data.source": args.data})
        cfg = cfgmod.override(cfg, **cfgmod.parse_assignments(args.set))
    except cfgmod.ConfigError as exc:
        ap.error(str(exc))
    ev = Evaluator(cfg)
    print(f"preset {args.preset}, device {ev.device}"
          + (f", overrides {' '.join(args.set)}" if args.set else ""), flush=True)
    start = time.perf_counter()
    ev.data  # noqa: B018 - load before timing
    print(f"data loaded in {time.perf_counter() - start:.1f} s", flush=True)
    start = time.perf_counter()
    for i in range(len(cfg.anchors)):
        ev.baseline_step(i)
    print(f"step-time baselines measured in {time.perf_counter() - start:.1f} s", flush=True)
    ref, ref_time = _reference(ev)
    if ref.stage == "quality" and args.time_rejected_reference:
        print("evaluating BN-ReLU again with the quality check off, to time a full evaluation", flush=True)
        ev.hooks = default_hooks(dataclasses.replace(cfg.rejection, quality_threshold=0.0))
        ref, ref_time = _reference(ev)
        ev.hooks = default_hooks(cfg.rejection)
    if not args.samples:
        return
    if args.sample_seconds:
        ev.config = cfgmod.override(ev.config, **{"rejection.max_seconds": args.sample_seconds})
    rng = np.random.default_rng(args.seed)
    by_stage: dict[str, list[float]] = {}
    for _ in range(args.samples):
        genome = random_genome(rng)
        start = time.perf_counter()
        result = ev(genome)
        stage = result.stage or "passed (full evaluation)"
        by_stage.setdefault(stage, []).append(time.perf_counter() - start)
        print(f"  {genome.key[:12]}  {by_stage[stage][-1]:7.2f} s  {stage}", flush=True)
    print(f"{args.samples} random layers, preset {args.preset}:")
    print(f"{'decided at':<26} {'layers':>6} {'mean s':>8} {'/ BN-ReLU full':>15}")
    for stage, times in sorted(by_stage.items(), key=lambda kv: statistics.mean(kv[1])):
        print(f"{stage:<26} {len(times):>6} {statistics.mean(times):>8.2f} {statistics.mean(times) / ref_time:>15.4f}")
    total = sum(sum(t) for t in by_stage.values())
    print(f"all {args.samples}: {total:.1f} s, i.e. {total / ref_time:.2f} BN-ReLU evaluations "
          f"({total / ref_time / args.samples:.3f} per layer); {args.samples / total * 3600:.0f} random "
          "layers per hour in this process")


if __name__ == "__main__":
    main()
