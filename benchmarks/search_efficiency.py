"""Search efficiency, the paper's Figure 10 in small: evolution against random search at equal
budget, best-so-far against candidates evaluated, over several seeds.

    python benchmarks/search_efficiency.py surrogate [--target evonorm_b0] [--budget 600] [--seeds 10]
    python benchmarks/search_efficiency.py smoke --data ../shared/data/cifar10 [--budget 30] [--seeds 2]

``surrogate``: fitness = agreement (R²) of a layer's outputs with a hidden target layer on probe
tensors (milliseconds a candidate). ``smoke``: the smoke preset's real proxy training on CIFAR.
Prints mean best-so-far at a few budgets, per-seed finals, wins/ties/losses and a one-sided sign
test (binomial) of "evolution's final best > random search's".
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.stats import binomtest

from gp import zoo
from gp.search import Evolution, RandomSearch
from gp.search.surrogate import Surrogate


def best_so_far(history, budget: int) -> np.ndarray:
    """Best mean score after each finished evaluation (duplicates cost nothing and are skipped)."""
    curve, best = [], 0.0
    for r in history:
        if not r.evaluated:
            continue
        if r.objectives is not None:
            best = max(best, r.mean)
        curve.append(best)
    return np.array(curve[:budget])


def compare(evaluate, budget: int, seeds: int, population: int, tournament: int) -> dict:
    curves = {"evolution": [], "random": []}
    for seed in range(seeds):
        evo = Evolution(population, tournament, "pareto", seed=seed)
        curves["evolution"].append(best_so_far(evo.run(evaluate, budget), budget))
        rnd = RandomSearch(seed=seed)
        curves["random"].append(best_so_far(rnd.run(evaluate, budget), budget))
    return {k: np.stack(v) for k, v in curves.items()}


def sign_test(curves: dict) -> tuple[int, int, int, float]:
    evo, rnd = curves["evolution"][:, -1], curves["random"][:, -1]
    wins, losses = int((evo > rnd + 1e-9).sum()), int((rnd > evo + 1e-9).sum())
    ties = len(evo) - wins - losses
    p = binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue if wins + losses else 1.0
    return wins, ties, losses, p


def report(curves: dict, budget: int) -> None:
    marks = sorted({max(1, budget // 10), budget // 4, budget // 2, budget})
    print(f"{'best-so-far (mean over seeds)':<30} " + " ".join(f"{f'@{m}':>8}" for m in marks))
    for name, c in curves.items():
        print(f"{name:<30} " + " ".join(f"{c[:, m - 1].mean():>8.3f}" for m in marks))
    print("per seed final (evolution / random): " + ", ".join(
        f"{e:.3f}/{r:.3f}" for e, r in zip(curves["evolution"][:, -1], curves["random"][:, -1], strict=True)))
    wins, ties, losses, p = sign_test(curves)
    print(f"evolution wins {wins}, ties {ties}, loses {losses}; one-sided sign test p = {p:.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", choices=["surrogate", "smoke"])
    ap.add_argument("--target", default="evonorm_b0", help="surrogate: the hidden zoo layer")
    ap.add_argument("--budget", type=int, default=None)
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--population", type=int, default=20)
    ap.add_argument("--tournament", type=int, default=5)
    ap.add_argument("--data", default=None, help="smoke: data source (e.g. ../shared/data/cifar10)")
    args = ap.parse_args()
    if args.task == "surrogate":
        budget, seeds = args.budget or 600, args.seeds or 10
        evaluate = Surrogate(zoo.get(args.target))
        print(f"surrogate: R² to {args.target} on probe tensors; budget {budget}, {seeds} seeds, "
              f"population {args.population}, tournament {args.tournament}")
    else:
        from evaluation import config as cfgmod
        from evaluation.evaluate import Evaluator

        budget, seeds = args.budget or 30, args.seeds or 2
        cfg = cfgmod.load("smoke")
        if args.data:
            cfg = cfgmod.override(cfg, **{"data.source": args.data})
        evaluator = Evaluator(cfg)

        def evaluate(genome):
            return evaluator(genome).objectives

        print(f"smoke proxy (real CIFAR training): budget {budget}, {seeds} seeds, population {args.population}, "
              f"tournament {args.tournament}")
    report(compare(evaluate, budget, seeds, args.population, args.tournament), budget)


if __name__ == "__main__":
    main()
