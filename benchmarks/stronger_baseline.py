"""Evolution against a stronger random search, reusing a saved search_dynamics run.

``search_dynamics.py --random-require-x`` compares evolution with random search that, like
evolution's founders, draws only graphs whose output reads x. Evolution is deterministic given
its seed, so its curves need not be recomputed: this script reads them from a saved run's JSON,
runs only the stronger baseline with the same seeds and settings, and prints the same verdicts.
With ``--screen`` the baseline also redraws, unevaluated, every proposal the static probe rejects
(what evolution does by default): random search that spends its budget only on layers that can
score.

    python benchmarks/stronger_baseline.py docs/search-dynamics-heldout-inverse.json --first-seed 10
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from search_dynamics import MARGIN, run_one, sign_test, sign_test_sooner  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("curves", help="JSON written by search_dynamics.py (its --plot path with .json)")
    ap.add_argument("--first-seed", type=int, default=0, help="the run's first seed (default %(default)s)")
    ap.add_argument("--workers", type=int, default=2, help="processes (default %(default)s)")
    ap.add_argument("--screen", action="store_true", help="the baseline screens with the static probe too")
    ap.add_argument("--out", help="write the baseline's curves here (JSON)")
    ap.add_argument("--margin", type=float, default=MARGIN,
                    help="least difference of final bests that counts as a win (default %(default)s)")
    args = ap.parse_args()
    saved = json.loads(Path(args.curves).read_text())
    settings = saved["settings"] | {"random_require_x": True, "random_screen": args.screen}
    targets = settings["targets"]
    seeds = range(args.first_seed, args.first_seed + settings["seeds"])
    jobs = [(name, g, "random", "-", seed, settings) for name, g in targets.items() for seed in seeds]
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        results = pool.map(run_one, jobs, chunksize=1)
    strong: dict[str, list] = {}
    for (name, _, _, _), curve, *_ in results:
        strong.setdefault(name, []).append(curve)
    strong_name = "random screened" if args.screen else "random reading x"
    early = min(100, settings["budget"])  # the curves' early point (a budget under 100 has its last)
    print(f"{'target':<10} {'criterion':<8} final best: evolution / random / {strong_name}   @{early} evo/strong"
          "   W/T/L  p   sooner W/T/L  p")
    for name in targets:
        rx, plain = np.array(strong[name]), np.array(saved["curves"][f"{name}|random|-"])
        for criterion in ("pareto", "average"):
            key = f"{name}|evolution|{criterion}"
            if key not in saved["curves"]:
                continue
            evo = np.array(saved["curves"][key])
            w, t, lo, p = sign_test(evo[:, -1], rx[:, -1], args.margin)
            ws, ts, ls, ps = sign_test_sooner(evo, rx, args.margin)
            print(f"{name:<10} {criterion:<8} {evo[:, -1].mean():.3f} / {plain[:, -1].mean():.3f} / "
                  f"{rx[:, -1].mean():.3f}   {evo[:, early - 1].mean():.3f}/{rx[:, early - 1].mean():.3f}   "
                  f"{w}/{t}/{lo}  {p:.4f}   {ws}/{ts}/{ls}  {ps:.4f}")
    if args.out:
        Path(args.out).write_text(json.dumps(strong))


if __name__ == "__main__":
    main()
