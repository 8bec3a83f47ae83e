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

Evolution's curves do not depend on the baseline a run was compared with, so ``--random-from``
takes random search's curves from other runs on the same targets, paired in order: a study of an
evolution option run against one baseline is then also counted against another.

    python benchmarks/recount.py docs/outside-study-4646-strong-adaptive.json \
        --random-from docs/outside-study-4646.json
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


RANDOM_SETTINGS = ("targets", "budget", "seeds", "first_seed", "probes", "fitness", "outside_fitness", "score",
                   "vectors", "batch")
"""What a run's random searches depend on, of the settings ``search_dynamics.py`` and ``outside_study.py``
save (the baseline is what ``--random-from`` exists to change)."""


def with_random_from(run: dict, other: dict, names: tuple[str, str]) -> dict:
    """``run``'s curves with random search's taken from ``other``, a run on the same targets and
    seeds; raises ValueError naming the runs when they differ there."""
    mine, theirs = run.get("settings", {}), other.get("settings", {})
    for key in RANDOM_SETTINGS:
        a, b = mine.get(key), theirs.get(key)
        if a != b:
            said = f"{a!r} against {b!r}"
            if key == "targets":  # name the targets, not their formulas
                a, b = sorted(a or {}), sorted(b or {})
                said = f"{a} against {b}" if a != b else "the same names, other formulas"
            raise ValueError(f"{names[0]} and {names[1]} differ in {key}: {said}")
    randoms = {k: v for k, v in other["curves"].items() if k.endswith("|random|-")}
    return {k: v for k, v in run["curves"].items() if not k.endswith("|random|-")} | randoms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("curves", nargs="+", help="JSON written by search_dynamics.py (its --plot path with .json)")
    ap.add_argument("--margin", type=float, default=1e-3,
                    help="least difference of final bests that counts as a win (default %(default)s)")
    ap.add_argument("--plot", metavar="PNG", help="draw evolution's final mean best against random search's, one "
                    "point per target and criterion, filled where evolution won at least 8 of 10 seeds")
    ap.add_argument("--random-from", nargs="+", metavar="RUN",
                    help="take random search's curves from these runs, one per curves file, in order (give it "
                         "after the curves files)")
    args = ap.parse_args()
    if args.margin < 0:
        ap.error(f"--margin must be 0 or more, got {args.margin}")
    if args.random_from and len(args.random_from) != len(args.curves):
        ap.error(f"--random-from needs one run per curves file: {len(args.curves)} curves files, "
                 f"{len(args.random_from)} runs")
    won = sooner = total = 0
    points: list[tuple[str, float, float, bool]] = []  # criterion, random's mean, evolution's, won
    pooled: dict[str, np.ndarray] = {}  # criterion -> [seed W, T, L, sooner W, T, L, target higher, equal, lower]
    print(f"margin {args.margin:g}")
    print(f"{'run':<40} {'target':<10} {'criterion':<8} evo / random   W/T/L  p        sooner W/T/L  p")
    for i, path in enumerate(args.curves):
        run = json.loads(Path(path).read_text())
        curves = run["curves"]
        if args.random_from:
            try:
                curves = with_random_from(run, json.loads(Path(args.random_from[i]).read_text()),
                                          (path, args.random_from[i]))
            except ValueError as err:
                ap.error(str(err))
        rows = recount(curves, args.margin)
        for name, criterion, e, r, (w, t, lo, p), (ws, ts, ls, ps) in rows:
            n = w + t + lo
            won, sooner, total = won + (w >= 0.8 * n), sooner + (ws >= 0.8 * n), total + 1
            points.append((criterion, r, e, w >= 0.8 * n))
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
    if args.plot:
        from analysis.plots import head_to_head

        title = (f"{len(args.curves)} run(s), {total} target/criterion pairs"
                 + ("; random search from other runs" if args.random_from else "") + f"; margin {args.margin:g}")
        print(f"plot: {head_to_head(points, Path(args.plot), title, list(pooled), args.margin)}")


if __name__ == "__main__":
    main()
