"""Two saved search_dynamics runs side by side: the same targets and seeds under two settings.

For each target and criterion it prints random search's final mean best, each run's final mean
best and wins/ties/losses against random search, and the second run against the first seed by
seed. The random searches of the two runs must be the same (same targets, seeds and baseline
settings); the script checks it, so a comparison of runs that differ there is refused.

    python benchmarks/compare_runs.py docs/search-dynamics-heldout-indel-inverse.json \\
        docs/search-dynamics-heldout-screen-inverse.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from search_dynamics import sign_test  # noqa: E402


def finals(curves: dict, key: str) -> np.ndarray:
    return np.array(curves[key])[:, -1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before", help="JSON written by search_dynamics.py (its --plot path with .json)")
    ap.add_argument("after", help="the second run's JSON")
    args = ap.parse_args()
    before, after = (json.loads(Path(p).read_text())["curves"] for p in (args.before, args.after))
    names = list(dict.fromkeys(k.split("|")[0] for k in after))
    print(f"{'target':<10} {'criterion':<8} random | before: mean W/T/L | after: mean W/T/L | after vs before")
    for name in names:
        key = f"{name}|random|-"
        if key not in before:
            sys.exit(f"{args.before} has no target {name!r}")
        rnd, rnd_before = finals(after, key), finals(before, key)
        if rnd.shape != rnd_before.shape or not np.allclose(rnd, rnd_before):
            sys.exit(f"the random searches of {name!r} differ between the runs: not the same targets, seeds "
                     "or baseline")
        for criterion in ("pareto", "average"):
            key = f"{name}|evolution|{criterion}"
            if key not in after or key not in before:
                continue
            old, new = finals(before, key), finals(after, key)
            cells = [f"{e.mean():.3f} {'/'.join(map(str, sign_test(e, rnd)[:3]))}" for e in (old, new)]
            print(f"{name:<10} {criterion:<8} {rnd.mean():.3f} | {cells[0]} | {cells[1]} | "
                  + "/".join(map(str, sign_test(new, old)[:3])))


if __name__ == "__main__":
    main()
