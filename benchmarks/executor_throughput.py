"""Candidates per minute with the serial executor and with worker processes (1 and 2 by default),
on the same fixed set of layers, measured in one run.

    python benchmarks/executor_throughput.py [--data ../shared/data/cifar10] [--preset smoke] [--count 16]
        [--device cpu] [--workers 1,2] [--no-serial] [--mix all|random] [--set train.steps=300]

The set is seeded random layers (mostly rejected early, as in a real search) plus, with
``--mix all``, the zoo layers BN-ReLU, EvoNorm-S0 and B0 (trained in full). Worker start-up (spawn,
data load, BN-ReLU timing) is measured apart from the steady state: each worker first evaluates one
warm-up layer. On a GPU (``--device cuda``) every worker shares the one GPU, so ``--workers 1,2,4,8``
finds how many candidate workers fill it; the ratio column is against the first row.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import numpy as np

from evaluation import config as cfgmod
from evaluation.evaluate import Evaluator
from evaluation.executors import ProcessExecutor
from gp import random_genome, zoo
from gp.search import SerialExecutor


def layers(count: int, mix: str = "all"):
    rng = np.random.default_rng(0)
    out = [zoo.get(n) for n in ("bn_relu", "evonorm_s0", "evonorm_b0")] if mix == "all" else []
    while len(out) < count:
        g = random_genome(rng)
        if g.key not in {o.key for o in out}:
            out.append(g)
    return out


def throughput(executor, genomes, outcomes: Counter | None = None) -> float:
    """Candidates per minute, keeping the executor full; counts each result's deciding stage
    ("ok" for a layer that passed) into ``outcomes``."""
    queue, in_flight, done = list(genomes), 0, 0
    start = time.perf_counter()
    while done < len(genomes):
        while queue and in_flight < executor.capacity:
            executor.submit(queue.pop(0))
            in_flight += 1
        _, result = executor.next_result()
        if outcomes is not None:
            outcomes[result.stage or result.status.value] += 1
        in_flight -= 1
        done += 1
    return len(genomes) / (time.perf_counter() - start) * 60


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="smoke")
    ap.add_argument("--data", default=None)
    ap.add_argument("--count", type=int, default=16)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    ap.add_argument("--workers", default="1,2", help="worker counts to time, comma-separated (default 1,2)")
    ap.add_argument("--no-serial", action="store_true", help="skip the in-process serial executor")
    ap.add_argument("--mix", choices=("all", "random"), default="all",
                    help="all: zoo layers and random ones; random: seeded random layers only")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a preset key, e.g. --set train.steps=300 (repeatable)")
    args = ap.parse_args()
    try:
        counts = [int(w) for w in args.workers.split(",")]
    except ValueError:
        ap.error(f"--workers must be comma-separated integers, got {args.workers!r}")
    try:
        cfg = cfgmod.load(args.preset)
        if args.data:
            cfg = cfgmod.override(cfg, **{"data.source": args.data})
        cfg = cfgmod.override(cfg, device=args.device, **cfgmod.parse_assignments(args.set))
    except cfgmod.ConfigError as exc:
        ap.error(str(exc))
    genomes = layers(args.count, args.mix)
    warm = random_genome(np.random.default_rng(99), num_nodes=1)
    rows, outcomes = [], Counter()
    if not args.no_serial:
        start = time.perf_counter()
        serial = SerialExecutor(Evaluator(cfg))
        serial.submit(warm)
        serial.next_result()
        rows.append(("serial (in process)", time.perf_counter() - start, throughput(serial, genomes, outcomes)))
        print(f"{rows[-1][0]}: {rows[-1][2]:.1f} candidates/min", flush=True)
    for workers in counts:
        start = time.perf_counter()
        ex = ProcessExecutor(cfg, workers)
        for _ in range(workers):
            ex.submit(warm)
        for _ in range(workers):
            ex.next_result()
        ready = time.perf_counter() - start
        first = not rows  # outcomes are counted on the first executor timed only
        rows.append((f"process, {workers} worker{'s' * (workers > 1)}", ready,
                     throughput(ex, genomes, outcomes if first else None)))
        ex.close()
        print(f"{rows[-1][0]}: {rows[-1][2]:.1f} candidates/min", flush=True)
    base = rows[0][2]
    print(f"{len(genomes)} layers ({args.mix}), preset {args.preset}, device {args.device}"
          + (f", overrides {' '.join(args.set)}" if args.set else ""))
    print("outcomes (first executor): " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    print(f"{'executor':<22} {'start-up s':>10} {'cand./min':>10} {'ratio':>6}")
    for name, ready, rate in rows:
        print(f"{name:<22} {ready:>10.1f} {rate:>10.1f} {rate / base:>6.2f}   ({rate * 60:.0f}/hour)")


if __name__ == "__main__":
    main()
