"""The paper's Figure 10 in small, on real CIFAR-10: evolution against random search at equal
budget, several seeds each, from a random start (nothing seeded), best-so-far mean validation
accuracy against candidates evaluated, with BN-ReLU's level under the same preset.

    python scripts/figure10.py --data ../shared/data/cifar10 --preset fast --budget 40 --seeds 3

Every search is an ordinary checkpointed search under ``--out`` (``OUT/random-s0``, ...): a rerun
resumes the unfinished ones and skips the finished. Searches run seed by seed, random then
evolution, so a cut-short run still compares equal numbers of seeds. Writes the plot and the
curves (JSON) to ``--plot``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from analysis.plots import best_so_far
from evaluation import config as cfgmod
from evaluation.evaluate import Evaluator
from evaluation.experiment import Experiment, summary
from gp import zoo
from gp.search import SerialExecutor


def run_search(out: Path, eval_cfg, search_cfg, evaluator) -> Experiment:
    exp = Experiment.resume(out) if Experiment.exists(out) else Experiment.create(out, eval_cfg, search_cfg)
    if exp.searcher.evaluated < search_cfg.budget:
        exp.run(SerialExecutor(evaluator))
    return exp


def plot(curves: dict[str, list[list[float]]], bn_relu: float | None, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for algorithm, color in (("random", "grey"), ("evolution", "C0")):
        runs = curves.get(algorithm, [])
        if not runs:
            continue
        n = min(len(c) for c in runs)
        c = np.array([r[:n] for r in runs], dtype=float)
        x = np.arange(1, n + 1)
        for row in c:
            ax.plot(x, row, color=color, alpha=0.3, lw=0.8)
        ax.plot(x, np.nanmean(c, axis=0), color=color, lw=2, label=f"{algorithm} (mean of {len(runs)} seeds)")
    if bn_relu is not None:
        ax.axhline(bn_relu, color="k", ls="--", lw=1, label=f"BN-ReLU ({bn_relu:.3f})")
    ax.set_xlabel("candidates evaluated")
    ax.set_ylabel("best mean validation accuracy so far")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="cifar10", help="data source (offline: ../shared/data/cifar10)")
    ap.add_argument("--preset", default="fast", help="evaluation preset (default %(default)s)")
    ap.add_argument("--budget", type=int, default=40, help="evaluations per search (default %(default)s)")
    ap.add_argument("--seeds", type=int, default=3, help="searches per algorithm (default %(default)s)")
    ap.add_argument("--population", type=int, default=8, help="evolution's window (default %(default)s)")
    ap.add_argument("--tournament", type=int, default=3, help="tournament size (default %(default)s)")
    ap.add_argument("--criterion", default="pareto", help="pareto | average (default %(default)s)")
    ap.add_argument("--batch-independent", action="store_true", help="search the space without batch statistics")
    ap.add_argument("--out", default="runs/figure10", help="search directories (default %(default)s)")
    ap.add_argument("--plot", default="docs/figure10-cifar.png", help="plot path (default %(default)s)")
    args = ap.parse_args()

    eval_cfg = cfgmod.override(cfgmod.load(args.preset), **{"data.source": args.data})
    evaluator = Evaluator(eval_cfg)  # the data is loaded once for every search
    reference = "gn_relu" if args.batch_independent else "bn_relu"
    ref_result = evaluator(zoo.get(reference))
    ref_level = float(np.mean(list(ref_result.accuracies.values()))) if ref_result.objectives else None
    print(f"{reference} under {args.preset}: {ref_result.status} {ref_result.accuracies}", flush=True)
    curves: dict[str, list[list[float]]] = {}
    best: dict[str, list[tuple[float, str]]] = {}
    for seed in range(args.seeds):
        for algorithm in ("random", "evolution"):
            search_cfg = dataclasses.replace(
                cfgmod.load_search(args.preset), algorithm=algorithm, criterion=args.criterion, budget=args.budget,
                seed=seed, population_size=args.population, tournament_size=args.tournament, seed_layers=(),
                batch_stats=not args.batch_independent)
            exp = run_search(Path(args.out) / f"{algorithm}-s{seed}", eval_cfg, search_cfg, evaluator)
            print(summary(exp, top=3), "\n", flush=True)
            curves.setdefault(algorithm, []).append(best_so_far(exp.searcher.history)[1].tolist())
            top = exp.searcher.best(1)
            best.setdefault(algorithm, []).append((top[0].mean, top[0].genome) if top else (float("nan"), ""))
    plot(curves, ref_level, Path(args.plot), f"CIFAR-10, preset {args.preset}, budget {args.budget}, "
         f"{args.seeds} seeds, {'batch-independent space' if args.batch_independent else 'full space'}")
    Path(args.plot).with_suffix(".json").write_text(json.dumps(
        {"preset": args.preset, "reference": reference, "reference_level": ref_level, "curves": curves,
         "best": best}, indent=1))
    for algorithm, finals in best.items():
        print(f"{algorithm}: final best per seed " + ", ".join(f"{m:.3f}" for m, _ in finals))
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
