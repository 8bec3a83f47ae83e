"""The paper's Figure 10 in small, on real CIFAR-10: evolution against random search at equal
budget, several seeds each, from a random start (nothing seeded), best-so-far mean validation
accuracy against candidates evaluated, with BN-ReLU's level under the same preset.

    python scripts/figure10.py --data ../shared/data/cifar10 --preset tiny --budget 60 --seeds 3

Every search is an ordinary checkpointed search under ``--out`` (``OUT/random-s0``, ...): a rerun
resumes the unfinished ones and skips the finished. Searches run seed by seed, random then
evolution, so a cut-short run still compares equal numbers of seeds. Writes the plot and the
curves (JSON) to ``--plot``.

Two baselines come from one random search. The paper's random search draws graphs of the
generator as they come; six in ten ignore x and cost nothing (rejected before any training). The
candidates of that search whose output reads x, in order, are a random search that draws only
such graphs (the draws are independent), i.e. the stronger baseline evolution's founders use.
``--random-budget`` (default 2.5 x ``--budget``) lets the random search run long enough to give
``--budget`` such candidates. Where the preset screens proposals (``search.screen``, the default)
both searches redraw graphs the static probe rejects (among them every graph that ignores x)
without evaluating them, so the two baselines nearly coincide and the default is ``--budget``.
A search with no passing layer yet scores chance (0.1).

The searches can be shared between processes (``--only random-s0,evolution-s1``; each process
resumes or skips what is done), then one run without ``--only`` gathers and plots them all:

    OMP_NUM_THREADS=1 python scripts/figure10.py ... --only evolution-s0,random-s1 &
    OMP_NUM_THREADS=1 python scripts/figure10.py ... --only random-s0,evolution-s1 &
    wait; python scripts/figure10.py ...

``--rescore N`` trains each search's best layer (and the reference) again with N other seeds
(the preset's seed + 1 .. + N; quality check off) and compares the searches on those scores too.
A search's best is the maximum over many noisy scores, so the search that scores more layers of
one plateau (evolution scores many variants of its parents) comes out ahead by selection on the
noise alone; fresh seeds measure the layers instead (docs/results.md §2e). The scores are kept in
``OUT/rescore.json``, so a rerun trains nothing twice.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from analysis.plots import best_so_far
from analysis.stats import sign_test
from evaluation import config as cfgmod
from evaluation.evaluate import Evaluator
from evaluation.experiment import Experiment, summary
from evaluation.layers import is_search_dir, logged_history
from gp import formula, zoo
from gp.genome import Genome
from gp.search import SerialExecutor
from gp.search.record import ranked
from gp.variation import STEPS

CHANCE = 0.1
"""What a search scores before any of its candidates has passed: chance accuracy on 10 classes."""

CURVES = ("evolution", "random", "random reading x")


def run_search(out: Path, eval_cfg, search_cfg, evaluator, run: bool) -> Experiment | None:
    """The search under ``out``, created or resumed (and run to its budget); ``None`` when ``run``
    is false."""
    if not run:  # another process may own it: never open it here
        return None
    exp = (Experiment.resume(out, {"search.budget": search_cfg.budget}) if Experiment.exists(out)
           else Experiment.create(out, eval_cfg, search_cfg))
    if exp.searcher.evaluated < search_cfg.budget:
        exp.run(SerialExecutor(evaluator))
    return exp


def curve(records, budget: int) -> list[float]:
    """Best mean accuracy after each of the first ``budget`` evaluations (chance until one passes)."""
    best = best_so_far(records)[1][:budget]
    return np.nan_to_num(best, nan=CHANCE).tolist()


def reading_x(records) -> list:
    """The evaluated candidates whose output reads x, in order: a random search that draws only
    graphs reading x (see the module's docstring)."""
    return [r for r in records if r.evaluated and Genome.parse(r.genome).reads_x]


def reference_level(evaluator: Evaluator, reference: str, out: Path) -> float | None:
    """The reference layer's mean accuracy under the preset, measured once per ``out``."""
    path = out / f"{reference}.json"
    if path.exists():
        return json.loads(path.read_text())["level"]
    result = evaluator(zoo.get(reference))
    level = float(np.mean(list(result.accuracies.values()))) if result.objectives else None
    print(f"{reference}: {result.status} {result.accuracies}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"level": level, "status": result.status, "accuracies": result.accuracies}))
    return level


def versus(evo: list[float], other: list[float], name: str) -> str:
    n = min(len(evo), len(other))
    w = sum(e > r for e, r in zip(evo[:n], other[:n], strict=True))
    t = sum(e == r for e, r in zip(evo[:n], other[:n], strict=True))
    return (f"  evolution against {name}, seed by seed: {w} wins, {t} ties, {n - w - t} losses "
            f"(one-sided sign test p = {sign_test(w, n - w - t):.3f})")


def compare(curves: dict[str, list[list[float]]], budget: int) -> list[str]:
    """Per-seed final bests and wins/ties/losses of evolution against each random baseline."""
    lines = []
    evo = [c[budget - 1] for c in curves.get("evolution", []) if len(c) >= budget]
    for name in CURVES:
        finals = [c[budget - 1] for c in curves.get(name, []) if len(c) >= budget]
        incomplete = len(curves.get(name, [])) - len(finals)
        lines.append(f"{name}: best after {budget} evaluations per seed " + ", ".join(f"{f:.3f}" for f in finals)
                     + (f" (mean {np.mean(finals):.3f})" if finals else "")
                     + (f"; {incomplete} search(es) short of {budget}" if incomplete else ""))
        if name != "evolution" and evo and finals:
            lines.append(versus(evo, finals, name))
    return lines


def rescored_layers(best: dict[str, list[tuple[float, str]]], reference: str) -> dict[str, Genome]:
    """The layers to re-score, by name: the reference (a zoo name) and every search's best."""
    return {reference: zoo.get(reference)} | {g: Genome.parse(g) for finals in best.values() for _, g in finals if g}


def rescore(layers: dict[str, Genome], eval_cfg, evaluator: Evaluator, seeds: int, out: Path) -> dict[str, list]:
    """Mean accuracy of each layer (by name) trained with the seeds after the preset's, quality
    check off; a layer that does not train scores chance. Cached in ``OUT/rescore.json`` by key."""
    path = out / "rescore.json"
    cache = json.loads(path.read_text()) if path.exists() else {}
    fresh = range(eval_cfg.seed + 1, eval_cfg.seed + 1 + seeds)
    evaluators: dict[int, Evaluator] = {}  # one per fresh seed, made when a layer first needs training
    scores = {}
    for name, genome in layers.items():
        row = cache.setdefault(genome.key, {})
        for seed in fresh:
            if str(seed) not in row:
                if seed not in evaluators:
                    cfg = cfgmod.override(eval_cfg, **{"seed": seed, "rejection.quality_threshold": 0.0})
                    evaluators[seed] = Evaluator(cfg, data=evaluator.data)
                result = evaluators[seed](genome)
                row[str(seed)] = float(np.mean(list(result.accuracies.values()))) if result.objectives else CHANCE
                path.write_text(json.dumps(cache, indent=1))
                print(f"rescore {formula(genome)} seed {seed}: {row[str(seed)]:.3f}", flush=True)
        scores[name] = [row[str(seed)] for seed in fresh]
    return scores


def rescored_means(best: dict[str, list[tuple[float, str]]], rescored: dict[str, list]) -> dict[str, list[float]]:
    """Per algorithm, per seed: the fresh-seed mean of the search's best layer (chance if none)."""
    return {a: [float(np.mean(rescored[g])) if g else CHANCE for _, g in finals] for a, finals in best.items()}


def compare_rescored(best: dict[str, list[tuple[float, str]]], rescored: dict[str, list], reference: str,
                     seeds: int) -> list[str]:
    """Each search's best layer scored again with ``seeds`` fresh seeds, and evolution against
    random search on those means."""
    means = rescored_means(best, rescored)
    lines = [f"re-scored with {seeds} fresh seeds (mean of the seeds; the search's own score in brackets); "
             f"{reference}: {np.mean(rescored[reference]):.3f}"]
    for algorithm, finals in best.items():
        lines.append(f"{algorithm}: " + ", ".join(f"{m:.3f} ({s:.3f})" for m, (s, _) in
                                                  zip(means[algorithm], finals, strict=True))
                     + f" (mean {np.mean(means[algorithm]):.3f})")
    if "evolution" in means and "random" in means:
        lines.append(versus(means["evolution"], means["random"], "random (re-scored)"))
    return lines


def plot(curves: dict[str, list[list[float]]], bn_relu: float | None, path: Path, title: str,
         rescored: dict[str, list[float]] | None = None) -> None:
    """Best-so-far curves (thin: seeds, thick: their mean); with ``rescored``, each algorithm's
    final bests scored on fresh seeds, as hollow markers (one per seed) and a bar (their mean)
    right of the curves' end."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for algorithm, color in zip(CURVES, ("C0", "grey", "C1"), strict=True):
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
    end = max((len(c) for runs in curves.values() for c in runs), default=1)
    for k, (algorithm, means) in enumerate((rescored or {}).items()):
        color = {"evolution": "C0", "random": "grey"}.get(algorithm, "C1")
        x = end * (1.04 + 0.04 * k)
        ax.scatter([x] * len(means), means, facecolors="none", edgecolors=color, s=18, zorder=3)
        ax.plot([x - end * 0.015, x + end * 0.015], [np.mean(means)] * 2, color=color, lw=2.5,
                label=f"{algorithm}: its bests on fresh seeds")
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
    ap.add_argument("--preset", default="tiny", help="evaluation preset (default %(default)s)")
    ap.add_argument("--budget", type=int, default=40, help="evaluations compared (default %(default)s)")
    ap.add_argument("--random-budget", type=int,
                    help="evaluations of each random search (default: --budget where the preset screens "
                         "proposals, else 2.5 x --budget)")
    ap.add_argument("--only", help="run only these searches, e.g. reference,random-s0,evolution-s2 (no plot)")
    ap.add_argument("--gather", action="store_true",
                    help="run nothing: plot the searches as far as they got, compared at the shortest one's length")
    ap.add_argument("--min-window", type=int,
                    help="evolution's tournaments start when this many layers passed (default: the preset's)")
    ap.add_argument("--seeds", type=int, default=3, help="searches per algorithm (default %(default)s)")
    ap.add_argument("--population", type=int, default=8, help="evolution's window (default %(default)s)")
    ap.add_argument("--tournament", type=int, default=3, help="tournament size (default %(default)s)")
    ap.add_argument("--criterion", default="pareto", help="pareto | average (default %(default)s)")
    ap.add_argument("--mutation", choices=sorted(STEPS),
                    help="evolution's mutation step (default: the preset's; random search does not mutate)")
    ap.add_argument("--batch-independent", action="store_true", help="search the space without batch statistics")
    ap.add_argument("--out", default="runs/figure10", help="search directories (default %(default)s)")
    ap.add_argument("--plot", default="docs/figure10-cifar.png", help="plot path (default %(default)s)")
    ap.add_argument("--rescore", type=int, default=0, metavar="N",
                    help="train each search's best layer again with N fresh seeds and compare on those too "
                         "(default 0: no)")
    args = ap.parse_args()
    if args.rescore < 0:
        ap.error(f"--rescore must be 0 or more, got {args.rescore}")

    preset_search = cfgmod.load_search(args.preset)
    random_budget = args.random_budget or (args.budget if preset_search.screen else int(2.5 * args.budget))
    only = set(args.only.split(",")) if args.only else None
    out = Path(args.out)
    eval_cfg = cfgmod.override(cfgmod.load(args.preset), **{"data.source": args.data})
    evaluator = Evaluator(eval_cfg)  # the data is loaded once for every search
    reference = "gn_relu" if args.batch_independent else "bn_relu"
    ref_level = reference_level(evaluator, reference, out) if only is None or "reference" in only else None
    min_window = preset_search.min_window if args.min_window is None else args.min_window
    curves: dict[str, list[list[float]]] = {}
    best: dict[str, list[tuple[float, str]]] = {}
    for seed in range(args.seeds):
        for algorithm in ("random", "evolution"):
            name = f"{algorithm}-s{seed}"
            search_cfg = dataclasses.replace(
                preset_search, algorithm=algorithm, criterion=args.criterion,
                budget=random_budget if algorithm == "random" else args.budget, seed=seed,
                population_size=args.population, tournament_size=args.tournament, seed_layers=(),
                batch_stats=not args.batch_independent, min_window=min_window)
            if algorithm == "evolution" and args.mutation:
                search_cfg = dataclasses.replace(search_cfg, mutation=args.mutation)
            if not args.gather:
                exp = run_search(out / name, eval_cfg, search_cfg, evaluator, run=only is None or name in only)
                if exp is not None:
                    print(summary(exp, top=3), "\n", flush=True)
            if only or not is_search_dir(out / name):
                continue
            records = logged_history(out / name)
            curves.setdefault(algorithm, []).append(curve(records, args.budget))
            if algorithm == "random":
                curves.setdefault("random reading x", []).append(curve(reading_x(records), args.budget))
            top = ranked([r for r in records if r.evaluated][:args.budget])[:1]
            best.setdefault(algorithm, []).append((top[0].mean, top[0].genome) if top else (float("nan"), ""))
    if only:
        return
    at = args.budget
    if args.gather:  # searches cut short: compare where every one of them has got to
        at = min([len(c) for name in ("evolution", "random") for c in curves.get(name, [])] + [at])
    lines, means = compare(curves, at), None
    if args.rescore:
        if args.gather and at < args.budget:
            print(f"not re-scoring: the searches reached {at} of {args.budget} evaluations")
        else:
            scores = rescore(rescored_layers(best, reference), eval_cfg, evaluator, args.rescore, out)
            lines += compare_rescored(best, scores, reference, args.rescore)
            means = rescored_means(best, scores)
    plot(curves, ref_level, Path(args.plot), f"CIFAR-10, preset {args.preset}, budget {args.budget}, "
         f"{args.seeds} seeds, {'batch-independent space' if args.batch_independent else 'full space'}"
         + (f", evolution's mutation {args.mutation}" if args.mutation else ""), means)
    Path(args.plot).with_suffix(".json").write_text(json.dumps(
        {"preset": args.preset, "reference": reference, "reference_level": ref_level, "budget": at,
         "mutation": args.mutation or preset_search.mutation,
         "random_budget": random_budget, "curves": curves, "best": best, "comparison": lines}, indent=1))
    print("\n".join(lines))
    for algorithm, finals in best.items():
        print(f"{algorithm}: best layer per seed " + "; ".join(f"{m:.3f} {g}" for m, g in finals))
    print(f"plot: {args.plot}")

if __name__ == "__main__":
    main()
