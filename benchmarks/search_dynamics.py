"""Search dynamics: evolution against random search at equal budget, through the public ask/tell
API, on several hidden target layers of the space (zoo layers and random normalising layers),
over many seeds, with both winner criteria — the paper's Figure 10 on a surrogate fitness.

    python benchmarks/search_dynamics.py                         # defaults below, ~10 min on 2 cores
    python benchmarks/search_dynamics.py --score inverse --seeds 10 --plot docs/search-dynamics.png
    python benchmarks/search_dynamics.py --mutation point --population 20 --tournament 5

Fitness (gp.search.surrogate): agreement of a layer's outputs with the hidden target's on probe
tensors, one objective per probe shape; ``r2`` = 1 - normalised error clipped at 0 (flat for
most random layers), ``inverse`` = 1 / (1 + normalised error). Random targets are drawn with a
seed of their own (not a search seed): random graphs of the space with at least 3 live nodes
and a statistic among them that pass the static probe.

Prints, per target and criterion: mean best-so-far at a few budgets, wins/ties/losses of
evolution's final best against random search's for the same seed, and a one-sided sign test;
saves a plot of mean best-so-far curves (interquartile band) and the raw curves as JSON.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from pathlib import Path

import numpy as np

from analysis.nearness import nearness, parts
from analysis.plots import best_so_far
from analysis.stats import sign_test as sign_test_p
from evaluation.progress import ProgressLine
from gp import Genome, probe, random_genome, zoo
from gp.search import Evolution, RandomSearch
from gp.search.surrogate import Surrogate
from gp.variation import STEPS

STATISTICS = ("mean_", "sqmean_", "std_")


def random_targets(count: int, seed: int = 12345, min_live: int = 3) -> dict[str, Genome]:
    """Random normalising layers of the space: >= ``min_live`` live nodes, a statistic, pass the
    probe."""
    rng = np.random.default_rng(seed)
    out: dict[str, Genome] = {}
    while len(out) < count:
        g = random_genome(rng)
        live_ops = [g.node(i).op for i in g.live if i >= 4]
        if g.live_nodes < min_live or not any(op.startswith(STATISTICS) for op in live_ops) or probe(g).problem:
            continue
        try:
            Surrogate(g)
        except ValueError:
            continue
        out[f"random{len(out) + 1}"] = g.canonical
    return out


def targets(spec: str, target_seed: int = 12345, min_live: int = 3) -> dict[str, Genome]:
    """``b0,s0,random:3``: zoo layers by name (``evonorm_`` may be left out) and random ones."""
    out: dict[str, Genome] = {}
    for item in spec.split(","):
        if item.startswith("random:"):
            out |= random_targets(int(item.split(":")[1]), target_seed, min_live)
        else:
            name = item if item in zoo.names() else f"evonorm_{item}"
            out[item] = zoo.get(name)
    return out


def run_one(job: tuple) -> tuple[tuple, list[float], int, list[int], tuple[float, str]]:
    target_name, genome_text, algorithm, criterion, seed, args = job
    target = Genome.parse(genome_text)
    fitness = Surrogate(target, score=args["score"], vectors=args.get("vectors", "init"),
                        probes=args.get("probes", "narrow"))
    if algorithm == "random":
        search = RandomSearch(seed=seed, require_x=args.get("random_require_x", False),
                              screen=args.get("random_screen", False))
    else:
        search = Evolution(args["population"], args["tournament"], criterion, seed=seed, mutation=args["mutation"],
                           window_rejected=args["window_rejected"], immigration=args.get("immigration", 0.0),
                           flat_tournament=args.get("flat_tournament", "random"),
                           mutation_repeat=args.get("mutation_repeat", 0.5), require_x=args.get("require_x", True),
                           min_window=args.get("min_window") or None, screen=args.get("screen", False),
                           crossover=args.get("crossover", 0.0), parsimony=args.get("parsimony", False),
                           elite=args.get("elite", 0.0), distinct=args.get("distinct", False))
    search.run(fitness, args["budget"])
    # surrogate scores are >= 0: before the first passing layer the best so far counts as 0
    curve = np.nan_to_num(best_so_far(search.history)[1], nan=0.0).tolist()
    held = nearness(search.history, target, top=0).counts
    scored = [r for r in search.history if r.evaluated and r.objectives]
    top = max(scored, key=lambda r: float(np.mean(r.objectives)), default=None)
    best = (float(np.mean(top.objectives)), Genome.parse(top.genome).expression()) if top else (0.0, "-")
    return (target_name, algorithm, criterion, seed), curve, search.duplicates, held, best


def run_searches(run_one, chosen: dict[str, Genome], criteria: list[str], seeds: range, settings: dict,
                 workers: int) -> list:
    """``run_one`` on every (target, seed) for random search and for evolution with each criterion,
    in that order, on ``workers`` spawned processes; the results in the same order. A progress
    line on stderr counts the finished searches and estimates the time left."""
    jobs = []
    for name, g in chosen.items():
        for seed in seeds:
            jobs.append((name, str(g), "random", "-", seed, settings))
            jobs += [(name, str(g), "evolution", c, seed, settings) for c in criteria]
    line, start, results = ProgressLine(interval=30.0), time.monotonic(), []
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        for result in pool.imap(run_one, jobs, chunksize=1):  # in order: the count waits on a slow earlier job
            results.append(result)
            elapsed = time.monotonic() - start
            left = elapsed / len(results) * (len(jobs) - len(results))
            line.show(f"searches {len(results)}/{len(jobs)}, {elapsed / 60:.1f} min, about {left / 60:.0f} min left",
                      force=len(results) == len(jobs))
    line.done()
    return results


def save_curves(path: Path, settings: dict, chosen: dict[str, Genome], curves: dict[tuple, list]) -> None:
    """The best-so-far curves of a run as JSON, keyed ``target|algorithm|criterion`` (what
    ``recount.py``, ``stronger_baseline.py`` and ``compare_runs.py`` read)."""
    path.write_text(json.dumps({"settings": settings | {"targets": {n: str(g) for n, g in chosen.items()}},
                                "curves": {"|".join(k): v for k, v in curves.items()}}))


MARGIN = 1e-9
"""The least difference of final bests counted as a win (``--margin``). At large budgets both
searches may reach a target to within 1e-4 (``docs/results.md`` §1.0d); a margin of 1e-3 counts
those as ties."""


def sign_test(evo: np.ndarray, rnd: np.ndarray, margin: float = MARGIN) -> tuple[int, int, int, float]:
    """Wins/ties/losses of evolution's final best against random search's, seed by seed (a
    difference of ``margin`` or less is a tie), and a one-sided sign test (ties dropped)."""
    wins, losses = int((evo > rnd + margin).sum()), int((rnd > evo + margin).sum())
    return _verdict(wins, losses, len(evo))


def sign_test_sooner(evo: np.ndarray, rnd: np.ndarray, margin: float = MARGIN) -> tuple[int, int, int, float]:
    """As :func:`sign_test` on best-so-far curves (seeds x evaluations), with a tie on the final
    best broken by which search reached the tied level (the lower of the two finals) first."""
    final_e, final_r = evo[:, -1], rnd[:, -1]
    level = np.minimum(final_e, final_r)[:, None] - 1e-9
    reach_e, reach_r = (evo >= level).argmax(1), (rnd >= level).argmax(1)
    tied = np.abs(final_e - final_r) <= margin
    wins = int(((final_e > final_r + margin) | (tied & (reach_e < reach_r))).sum())
    losses = int(((final_r > final_e + margin) | (tied & (reach_r < reach_e))).sum())
    return _verdict(wins, losses, len(evo))


def _verdict(wins: int, losses: int, n: int) -> tuple[int, int, int, float]:
    return wins, n - wins - losses, losses, sign_test_p(wins, losses)


def cell_tests(curves: dict, names, criteria: list[str], margin: float):
    """Per target and criterion, in that order: (target, criterion, evolution's best-so-far curves,
    random search's (seeds x evaluations), the sign test on the final bests, the "sooner" one)."""
    for name in names:
        rnd = np.array(curves[(name, "random", "-")])
        for c in criteria:
            evo = np.array(curves[(name, "evolution", c)])
            yield name, c, evo, rnd, sign_test(evo[:, -1], rnd[:, -1], margin), sign_test_sooner(evo, rnd, margin)


def plot(curves: dict, names: list[str], criteria: list[str], path: Path, title: str, *, errors: bool = False) -> None:
    """Mean best-so-far curves with interquartile bands, one panel per target. ``errors=True``:
    the curves are minus an error, drawn as the error on a log scale (lower is better; floored at
    1e-6, where the target is found)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.2), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        for label, key, color in [("random", (name, "random", "-"), "grey")] + [
                (f"evolution ({c})", (name, "evolution", c), col) for c, col in zip(criteria, ["C0", "C3"],
                                                                                     strict=False)]:
            c = np.maximum(-np.array(curves[key]), 1e-6) if errors else np.array(curves[key])  # 0: floored
            x = np.arange(1, c.shape[1] + 1)
            ax.plot(x, c.mean(0), color=color, label=label)
            ax.fill_between(x, *np.percentile(c, [25, 75], axis=0), color=color, alpha=0.15)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("candidates evaluated")
        if errors:
            ax.set_yscale("log")
            ax.set_ylim(top=min(10.0, ax.get_ylim()[1]))
    axes[0][0].set_ylabel("best error so far (log)" if errors else "best fitness so far")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", default="b0,s0,random:3", help="zoo names and random:N (default %(default)s)")
    ap.add_argument("--score", choices=["r2", "inverse"], default="r2", help="surrogate fitness (default %(default)s)")
    ap.add_argument("--vectors", choices=["init", "random"], default="init",
                    help="the layers' v0, v1 on the probes: init (0 and 1) or random per channel, the same for the "
                         "target and every candidate (default %(default)s)")
    ap.add_argument("--probes", choices=["narrow", "wide", "both"], default="narrow",
                    help="probe inputs: narrow (channel scales within 2x, the default), wide (channel and sample "
                         "scales over orders of magnitude, so a pointwise function cannot pass for a normaliser) "
                         "or both (one objective per probe of each)")
    ap.add_argument("--budget", type=int, default=400, help="evaluations per search (default %(default)s)")
    ap.add_argument("--seeds", type=int, default=10, help="seeds per algorithm (default %(default)s)")
    ap.add_argument("--population", type=int, default=50, help="aging window (default %(default)s)")
    ap.add_argument("--tournament", type=int, default=10, help="tournament size (default %(default)s)")
    ap.add_argument("--mutation", default="indel", choices=sorted(STEPS), help="mutation step (default %(default)s)")
    ap.add_argument("--criteria", default="pareto,average", help="winner criteria (default %(default)s)")
    ap.add_argument("--window-rejected", action="store_true", help="rejected candidates take window slots")
    ap.add_argument("--immigration", type=float, default=0.0,
                    help="share of asks answered with a fresh random genome (default %(default)s)")
    ap.add_argument("--crossover", type=float, default=0.0,
                    help="share of children made by subtree crossover of two tournament winners "
                         "(default %(default)s)")
    ap.add_argument("--elite", type=float, default=0.0,
                    help="share of children whose parent is the criterion's winner over every candidate so far "
                         "instead of a tournament's (default %(default)s)")
    ap.add_argument("--distinct", action="store_true",
                    help="keep out of the window a candidate whose scores equal a window member's "
                         "(Evolution(distinct=True))")
    ap.add_argument("--parsimony", action="store_true",
                    help="of tournament members that score the same, only the smallest live graph competes")
    ap.add_argument("--flat-tournament", choices=["random", "mutate"], default="random",
                    help="what evolution does when a tournament's members all score the same (default %(default)s)")
    ap.add_argument("--mutation-repeat", type=float, default=0.5,
                    help="probability of each further mutation step (default %(default)s)")
    ap.add_argument("--require-x", action=argparse.BooleanOptionalAction, default=True,
                    help="evolution draws its random genomes among graphs that read x (default %(default)s)")
    ap.add_argument("--random-require-x", action="store_true",
                    help="the baseline draws only graphs that read x too (a stronger baseline than the paper's)")
    ap.add_argument("--screen", action=argparse.BooleanOptionalAction, default=True,
                    help="evolution redraws, without evaluating it, a proposal that the static probe rejects "
                         "(default %(default)s)")
    ap.add_argument("--random-screen", action="store_true",
                    help="the baseline screens its proposals with the static probe too (a stronger baseline)")
    ap.add_argument("--min-window", type=int, default=0,
                    help="tournaments start when the window holds this many (default 0: when full)")
    ap.add_argument("--first-seed", type=int, default=0, help="seeds run from here (default %(default)s)")
    ap.add_argument("--target-seed", type=int, default=12345,
                    help="seed drawing the random targets (default %(default)s)")
    ap.add_argument("--min-live", type=int, default=3,
                    help="live nodes a random target has at least (default %(default)s)")
    ap.add_argument("--workers", type=int, default=2, help="processes (default %(default)s)")
    ap.add_argument("--margin", type=float, default=MARGIN,
                    help="least difference of final bests that counts as a win (default %(default)s; "
                         "benchmarks/recount.py recounts a saved run at another)")
    ap.add_argument("--plot", default="runs/search-dynamics.png", help="plot path (default %(default)s)")
    args = ap.parse_args()
    criteria = args.criteria.split(",")
    chosen = targets(args.targets, args.target_seed, args.min_live)
    settings = {"score": args.score, "budget": args.budget, "population": args.population,
                "tournament": args.tournament, "mutation": args.mutation, "window_rejected": args.window_rejected,
                "immigration": args.immigration, "flat_tournament": args.flat_tournament,
                "mutation_repeat": args.mutation_repeat, "require_x": args.require_x,
                "random_require_x": args.random_require_x, "min_window": args.min_window, "screen": args.screen,
                "random_screen": args.random_screen, "crossover": args.crossover,
                "parsimony": args.parsimony, "elite": args.elite, "distinct": args.distinct, "vectors": args.vectors,
                "probes": args.probes}
    print(f"surrogate {args.score}; budget {args.budget}; {args.seeds} seeds; population {args.population}, "
          f"tournament {args.tournament}, mutation {args.mutation}, window_rejected {args.window_rejected}, "
          f"immigration {args.immigration}, mutation_repeat {args.mutation_repeat}, "
          f"flat_tournament {args.flat_tournament}, require_x {args.require_x}, "
          f"min_window {args.min_window or 'full'}, screen {args.screen}, crossover {args.crossover}, "
          f"parsimony {args.parsimony}, elite {args.elite}, distinct {args.distinct}, vectors {args.vectors}, "
          f"probes {args.probes}; "
          f"baseline: require_x {args.random_require_x}, screen {args.random_screen}; seeds from {args.first_seed}")
    for name, g in chosen.items():
        print(f"  target {name}: {g.expression()}")
    results = run_searches(run_one, chosen, criteria, range(args.first_seed, args.first_seed + args.seeds),
                           settings, args.workers)
    curves: dict[tuple, list] = {}
    duplicates: dict[str, list[int]] = {}
    held: dict[tuple, list] = {}
    bests: dict[tuple, list] = {}
    for (name, algorithm, criterion, seed), curve, dups, counts, best in results:
        curves.setdefault((name, algorithm, criterion), []).append(curve)
        duplicates.setdefault(algorithm, []).append(dups)
        held.setdefault((name, algorithm, criterion), []).append(counts)
        bests.setdefault((name, algorithm, criterion), []).append((*best, seed))
    marks = sorted({args.budget // 8, args.budget // 4, args.budget // 2, args.budget})
    print(f"\n{'target':<10} {'criterion':<8} " + " ".join(f"{'@' + str(m):>13}" for m in marks)
          + "   W/T/L   sign-test p   sooner: W/T/L   p")
    verdicts, sooner = [], []
    for name, c, evo, rnd, (w, t, lo, p), (ws, ts, ls, ps) in cell_tests(curves, chosen, criteria, args.margin):
        verdicts.append(w >= 0.8 * args.seeds)
        sooner.append(ws >= 0.8 * args.seeds)
        cells = " ".join(f"{evo[:, m - 1].mean():>6.3f}/{rnd[:, m - 1].mean():<6.3f}" for m in marks)
        print(f"{name:<10} {c:<8} {cells}  {w:>2}/{t}/{lo}   {p:.4f}        {ws:>2}/{ts}/{ls}   {ps:.4f}")
    print("(cells: evolution / random, mean best-so-far over seeds; W/T/L on the final best; 'sooner': a tie on "
          "the final best goes to the search that reached it in fewer evaluations)")
    print("duplicate proposals per search, mean: " + ", ".join(f"{a} {np.mean(d):.0f}" for a, d in duplicates.items()))
    print(f"evolution wins >= 80% of seeds in {sum(verdicts)} of {len(verdicts)} target/criterion pairs "
          f"({sum(sooner)} with ties broken by evaluations needed)")
    print("\nthe target's parts (its sub-expressions that read x, analysis.nearness) in the evaluated candidates: "
          "the most any candidate held, mean over seeds, and the mean number of candidates holding at least half")
    for name, g in chosen.items():
        total = len(parts(g))
        cells = []
        for algorithm, c in [("random", "-")] + [("evolution", c) for c in criteria]:
            runs = np.array(held[(name, algorithm, c)])  # seeds x (total + 1)
            most = np.array([max(k for k, n in enumerate(row) if n) for row in runs])
            half = runs[:, (total + 1) // 2:].sum(1)
            cells.append(f"{algorithm if c == '-' else c}: {most.mean():.1f}/{total}, {half.mean():.0f}")
        print(f"  {name:<10} " + "   ".join(cells))
    print("\nwhat was found: per target and search, the best layer (mean score) of the seed whose best is highest")
    for name in chosen:
        for algorithm, c in [("random", "-")] + [("evolution", c) for c in criteria]:
            score, expression, seed = max(bests[(name, algorithm, c)])
            print(f"  {name:<10} {algorithm if c == '-' else c:<8} {score:.3f}  seed {seed}  {expression}")
    path = Path(args.plot)
    plot(curves, list(chosen), criteria, path,
         f"surrogate {args.score}, pop {args.population}, tournament {args.tournament}, {args.mutation} mutation, "
         f"{args.seeds} seeds")
    save_curves(path.with_suffix(".json"), settings | {"seeds": args.seeds}, chosen, curves)
    print(f"plot: {path}; curves: {path.with_suffix('.json')}")


if __name__ == "__main__":
    main()
