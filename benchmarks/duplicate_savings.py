"""The share of evaluation time that the duplicate cache (same key, or same functional
fingerprint on the probe tensors) saves in a random-search run.

    python benchmarks/duplicate_savings.py [--data ../shared/data/cifar10] [--preset smoke] [--budget 40]

Each duplicate would have cost what its original's evaluation cost; the share saved is that sum
over (that sum + the time actually spent evaluating). Fingerprinting's own cost is reported too.
"""

from __future__ import annotations

import argparse
import time

from evaluation import config as cfgmod
from evaluation.evaluate import Evaluator
from gp.checks import fingerprint
from gp.search import RandomSearch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="smoke")
    ap.add_argument("--data", default=None)
    ap.add_argument("--budget", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    cfg = cfgmod.load(args.preset)
    if args.data:
        cfg = cfgmod.override(cfg, **{"data.source": args.data})
    evaluator = Evaluator(cfg)
    evaluator.data  # noqa: B018
    for i in range(len(cfg.anchors)):
        evaluator.baseline_step(i)
    seconds: dict[int, float] = {}
    fp_seconds = [0.0]

    def timed_fingerprint(genome):
        start = time.perf_counter()
        try:
            return fingerprint(genome)
        finally:
            fp_seconds[0] += time.perf_counter() - start

    search = RandomSearch(seed=args.seed, fingerprint=timed_fingerprint)

    def evaluate(genome):
        start = time.perf_counter()
        result = evaluator(genome)
        seconds[len(search.history)] = time.perf_counter() - start  # ordinal of the record about to be told
        return result.objectives

    search.run(evaluate, args.budget)
    dups = [r for r in search.history if not r.evaluated]
    by_key = sum(1 for r in dups if r.fingerprint is None)
    spent = sum(seconds.values())
    saved = sum(seconds.get(r.duplicate_of, 0.0) for r in dups)
    print(f"random search, preset {args.preset}, budget {args.budget} evaluations")
    print(f"candidates proposed {len(search.history)}: evaluated {search.evaluated}, duplicates {len(dups)} "
          f"({by_key} by key, {len(dups) - by_key} by fingerprint)")
    print(f"evaluation time spent {spent:.1f} s; saved by the cache {saved:.1f} s; "
          f"share saved {saved / (saved + spent):.1%}; fingerprinting cost {fp_seconds[0]:.2f} s")


if __name__ == "__main__":
    main()
