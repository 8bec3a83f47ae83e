"""Two saved search_dynamics runs side by side: the same targets and seeds under two settings.

For each target and criterion it prints random search's final mean best, each run's final mean
best and wins/ties/losses against random search, and the second run against the first seed by
seed. The random searches of the two runs must be the same (same targets, seeds and baseline
settings); the script checks it, so a comparison of runs that differ there is refused.

    python benchmarks/compare_runs.py docs/search-dynamics-heldout-indel-inverse.json \\
        docs/search-dynamics-heldout-screen-inverse.json

Given several pairs (before, after, before, after, ...), it compares each and then pools the second
runs against the first over every target and seed, per criterion, with a two-sided sign test. The
two criteria are not pooled with a test: with the same seed their searches share their founders.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from search_dynamics import sign_test, sign_test_p  # noqa: E402


def finals(curves: dict, key: str) -> np.ndarray:
    return np.array(curves[key])[:, -1]


def compare(before: dict, after: dict, names: tuple[str, str]) -> dict[str, np.ndarray]:
    """Print the table of one pair of runs; returns the second against the first, seeds W, T, L per
    criterion."""
    pooled: dict[str, np.ndarray] = {}
    for name in dict.fromkeys(k.split("|")[0] for k in after):
        key = f"{name}|random|-"
        if key not in before:
            sys.exit(f"{names[0]} has no target {name!r}")
        rnd, rnd_before = finals(after, key), finals(before, key)
        if rnd.shape != rnd_before.shape or not np.allclose(rnd, rnd_before):
            sys.exit(f"the random searches of {name!r} differ between {names[0]} and {names[1]}: not the same "
                     "targets, seeds or baseline")
        for criterion in ("pareto", "average"):
            key = f"{name}|evolution|{criterion}"
            if key not in after or key not in before:
                continue
            old, new = finals(before, key), finals(after, key)
            cells = [f"{e.mean():.3f} {'/'.join(map(str, sign_test(e, rnd)[:3]))}" for e in (old, new)]
            counts = sign_test(new, old)[:3]
            pooled[criterion] = pooled.get(criterion, np.zeros(3, int)) + counts
            print(f"{name:<10} {criterion:<8} {rnd.mean():.3f} | {cells[0]} | {cells[1]} | "
                  + "/".join(map(str, counts)))
    return pooled


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", metavar="before after",
                    help="JSON written by search_dynamics.py or outside_study.py (the --plot path with .json), "
                         "in pairs: the first run, then the second")
    args = ap.parse_args()
    if len(args.runs) < 2 or len(args.runs) % 2:
        ap.error(f"runs come in pairs (before, after): got {len(args.runs)}")
    pooled: dict[str, np.ndarray] = {}
    for before, after in zip(args.runs[::2], args.runs[1::2], strict=True):
        if len(args.runs) > 2:
            print(f"{before} -> {after}")
        print(f"{'target':<10} {'criterion':<8} random | before: mean W/T/L | after: mean W/T/L | after vs before")
        counts = compare(*(json.loads(Path(p).read_text())["curves"] for p in (before, after)), (before, after))
        for criterion, c in counts.items():
            pooled[criterion] = pooled.get(criterion, np.zeros(3, int)) + c
    for criterion, counts in pooled.items():
        w, t, lo = map(int, counts)  # Python ints: 2**n of a numpy int overflows
        print(f"after against before, {criterion}, every target and seed: {w}/{t}/{lo} "
              f"(two-sided sign test p {min(1.0, 2 * sign_test_p(max(w, lo), min(w, lo))):.2g})")
    if len(pooled) > 1:
        w, t, lo = map(int, sum(pooled.values()))
        print(f"both criteria together: {w}/{t}/{lo} (no test: a seed's two searches share their founders)")


if __name__ == "__main__":
    main()
