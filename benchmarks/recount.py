"""Wins, ties and losses of a saved search_dynamics run, recounted at another margin.

``search_dynamics.py`` counts a seed as won when evolution's final best exceeds random search's
by more than ``--margin`` (default 1e-9). At large budgets both searches can reach a target to
within 1e-4, and such "wins" are ties in substance (``docs/results.md`` §1.0d). This script reads
the curves a run saved and prints, per target and criterion, the final mean bests, W/T/L with
its sign test, and W/T/L with ties broken by evaluations needed, at the margin given, without
running anything again.

    python benchmarks/recount.py docs/search-dynamics-deep-2000-inverse.json --margin 1e-3

Given several runs on different targets, it also pools them per criterion: seeds won, tied and
lost over every target, and targets whose final mean best is higher, equal or lower, each with a
one-sided sign test. Within one criterion those trials are independent (a target's seeds are
separate searches, and each run's targets are drawn apart); across the two criteria they are not,
since both are compared with the same random searches, so nothing is pooled across criteria.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from search_dynamics import sign_test, sign_test_p, sign_test_sooner  # noqa: E402


def recount(curves: dict, margin: float) -> list[tuple[str, str, float, float, tuple, tuple]]:
    """(target, criterion, evolution's final mean, random's, (W, T, L, p), sooner (W, T, L, p))."""
    rows = []
    for name in dict.fromkeys(k.split("|")[0] for k in curves):
        rnd = np.array(curves[f"{name}|random|-"])
        for criterion in ("pareto", "average"):
            key = f"{name}|evolution|{criterion}"
            if key in curves:
                evo = np.array(curves[key])
                rows.append((name, criterion, evo[:, -1].mean(), rnd[:, -1].mean(),
                             sign_test(evo[:, -1], rnd[:, -1], margin), sign_test_sooner(evo, rnd, margin)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("curves", nargs="+", help="JSON written by search_dynamics.py (its --plot path with .json)")
    ap.add_argument("--margin", type=float, default=1e-3,
                    help="least difference of final bests that counts as a win (default %(default)s)")
    args = ap.parse_args()
    if args.margin < 0:
        ap.error(f"--margin must be 0 or more, got {args.margin}")
    won = sooner = total = 0
    pooled: dict[str, np.ndarray] = {}  # criterion -> [seed W, T, L, sooner W, T, L, target higher, equal, lower]
    print(f"margin {args.margin:g}")
    print(f"{'run':<40} {'target':<10} {'criterion':<8} evo / random   W/T/L  p        sooner W/T/L  p")
    for path in args.curves:
        rows = recount(json.loads(Path(path).read_text())["curves"], args.margin)
        for name, criterion, e, r, (w, t, lo, p), (ws, ts, ls, ps) in rows:
            n = w + t + lo
            won, sooner, total = won + (w >= 0.8 * n), sooner + (ws >= 0.8 * n), total + 1
            side = (e > r + args.margin, abs(e - r) <= args.margin, r > e + args.margin)
            pooled[criterion] = pooled.get(criterion, np.zeros(9, int)) + np.array((w, t, lo, ws, ts, ls, *side))
            print(f"{Path(path).stem[:40]:<40} {name:<10} {criterion:<8} {e:.3f} / {r:.3f}   {w}/{t}/{lo}  {p:.4f}"
                  f"   {ws}/{ts}/{ls}  {ps:.4f}")
    print(f"evolution wins >= 80% of seeds in {won} of {total} target/criterion pairs "
          f"({sooner} with ties broken by evaluations needed)")
    for criterion, counts in pooled.items():
        w, t, lo, ws, ts, ls, hi, eq, low = map(int, counts)
        print(f"pooled, {criterion}: seeds {w}/{t}/{lo} (p {sign_test_p(w, lo):.2g}), "
              f"with ties broken {ws}/{ts}/{ls} (p {sign_test_p(ws, ls):.2g}); "
              f"final mean higher/equal/lower on {hi}/{eq}/{low} targets (p {sign_test_p(hi, low):.2g})")


if __name__ == "__main__":
    main()
