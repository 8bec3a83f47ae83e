"""Evolution against random search as a user would compare them: through the public API only,
with a fitness of the user's own that shares nothing with the project's surrogate.

    python benchmarks/outside_study.py                      # defaults below, a few minutes on 2 cores
    python benchmarks/outside_study.py --targets b0,s1,random:4 --target-seed 5151 --seeds 10 \
        --plot docs/outside-study.png

The fitness is what an outside study writes in a few lines: build the candidate with
``gp.compile_layer`` (generated code, parameters at their initial values, training mode), run it
on a fixed standard-normal probe tensor, and score minus its normalised error to the hidden
target's output, ``-||y - t|| / ||t||``: unbounded below, 0 for the target's function. With
``--probes K`` (up to 3, of different shapes) there is one such objective per probe, so the two
winner criteria differ; with one probe the fitness returns a plain number. A layer that raises
or gives a non-finite output is told as rejected (None). The project's surrogate
(``gp.search.surrogate``), which the search defaults were tuned on, scores ``1 / (1 + e)`` on
three probe shapes with per-channel scales and shifts, through the interpreter: none of that is
used here. ``--fitness correlation`` scores minus the correlation distance ``1 - r`` instead (``r``
the Pearson correlation of the flattened outputs): 0 for the target's function up to scale and
shift, so layers that differ from the target by an affine map tie with it. ``--batch B`` drives
both searches as a user with B parallel evaluations would: ask B genomes, then tell B scores.

Searches: ``Evolution(population, tournament, criterion, seed=s)`` with every other option at
its default, and ``RandomSearch(seed=s)`` (with ``--baseline strong``, one that draws only layers that
read x and pass the static probe), ``--budget`` evaluations each, seeds ``--first-seed``
onwards. Random targets are those of ``search_dynamics.py`` (their own seed; at least
``--min-live`` live nodes and a statistic; they pass the static probe). Prints per target and
criterion the mean best at a few budgets, wins/ties/losses of evolution's final best against
random search's in the same seed (a difference under ``--margin`` is a tie; a tie goes to the
search that reached the level first in the "sooner" columns), a one-sided sign test, and saves a
plot of the mean best-so-far curves and the curves as JSON beside it (``recount.py`` reads them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from search_dynamics import (  # noqa: E402
    cell_tests,
    plot,
    run_searches,
    save_curves,
    targets,
)

from gp import Genome, compile_layer  # noqa: E402
from gp.search import Evolution, RandomSearch  # noqa: E402

SHAPES = ((16, 32, 8, 8), (8, 64, 4, 4), (32, 16, 8, 8))
"""The probes' shapes: ``--probes K`` scores on the first K, one objective each."""


class NormalisedError:
    """Minus the normalised error of a layer's output to the target's on standard-normal probes:
    one number with one probe, one objective per probe with several."""

    formula = "-||y - t|| / ||t||"
    zero = ""  # what a score of 0 means beyond "the target's function"

    def __init__(self, target: Genome, probes: int = 1, seed: int = 0) -> None:
        if not 1 <= probes <= len(SHAPES):
            raise ValueError(f"probes must be 1 to {len(SHAPES)}, got {probes}")
        g = torch.Generator().manual_seed(seed)
        self.xs = [torch.randn(shape, generator=g) for shape in SHAPES[:probes]]
        self.ts = self._outputs(target)
        if self.ts is None or any(float(t.norm()) == 0.0 for t in self.ts):
            raise ValueError(f"target {target.expression()} gives no usable output on the probes")

    def _outputs(self, genome: Genome) -> list[torch.Tensor] | None:
        outputs = []
        for x in self.xs:
            try:
                with torch.no_grad():
                    y = compile_layer(genome, x.shape[1]).train()(x)
            except Exception:  # noqa: BLE001 - a user's fitness rejects what it cannot run
                return None
            if not bool(torch.isfinite(y).all()):
                return None
            outputs.append(y)
        return outputs

    def __call__(self, genome: Genome) -> float | tuple[float, ...] | None:
        ys = self._outputs(genome)
        if ys is None:
            return None
        errors = [self.error(y, t) for y, t in zip(ys, self.ts, strict=True)]
        if not all(np.isfinite(errors)):
            return None
        return -errors[0] if len(errors) == 1 else tuple(-e for e in errors)

    @staticmethod
    def error(y: torch.Tensor, t: torch.Tensor) -> float:
        return float((y - t).norm() / t.norm())


class CorrelationDistance(NormalisedError):
    """Minus the correlation distance ``1 - r`` of a layer's output to the target's, ``r`` the
    Pearson correlation of the flattened outputs: 0 for the target's function up to scale and
    shift, -2 at worst; a constant output correlates with nothing (r = 0)."""

    formula = "-(1 - pearson(y, t))"
    zero = " up to scale and shift"

    def __init__(self, target: Genome, probes: int = 1, seed: int = 0) -> None:
        super().__init__(target, probes, seed)
        if any(self.centred(t) is None for t in self.ts):
            raise ValueError(f"target {target.expression()} gives a constant output on the probes")

    @staticmethod
    def centred(y: torch.Tensor) -> torch.Tensor | None:
        """``y`` flattened, minus its mean, as unit vector; None where it is constant up to rounding."""
        c = y.flatten().double()
        c = c - c.mean()
        spread = float(c.norm())
        return None if spread <= 1e-6 * float(y.double().norm()) else c / spread

    @classmethod
    def error(cls, y: torch.Tensor, t: torch.Tensor) -> float:
        yc, tc = cls.centred(y), cls.centred(t)
        return 1.0 - (float(yc @ tc) if yc is not None else 0.0)


FITNESS = {"error": NormalisedError, "correlation": CorrelationDistance}
"""``--fitness``: the score an outside study might write."""


EVOLUTION_OPTIONS = {
    "distinct": ("distinct", True, " instead of the defaults"),
    "no_screen": ("screen", False, ", which also evaluates the layers that the static probe would reject (a "
                                   "constant output, one that ignores x)"),
    "no_require_x": ("require_x", False, ", whose random genomes may then ignore x, as random search's do"),
    "adaptive_immigration": ("adaptive_immigration", True, ", which chooses between a mutant and a fresh random "
                                                           "genome by how often each has paid"),
}
"""Options a study is about: setting (and ``--flag``) -> (``Evolution`` keyword, the value it sets, the
rest of its help)."""


BASELINES = {
    "paper": ({}, "RandomSearch() with its defaults"),
    "strong": ({"require_x": True, "screen": True}, "RandomSearch(require_x=True, screen=True)"),
}
"""``--baseline``: the random search's keywords, and how the printout names it. ``strong`` draws only
layers that read x and pass the static probe, as evolution's founders are drawn, so that what is
left of evolution's lead is its selection and mutation, not those priors."""


def evolution_options(settings: dict) -> dict:
    """The ``Evolution`` keywords that ``settings`` turns on, in ``EVOLUTION_OPTIONS``'s order, then
    ``immigration`` and ``preselect`` when they are not 0."""
    chosen = {keyword: value for key, (keyword, value, _) in EVOLUTION_OPTIONS.items() if settings.get(key)}
    return chosen | {key: settings[key] for key in ("immigration", "preselect") if settings.get(key)}


def make_search(algorithm: str, criterion: str, seed: int, args: dict) -> RandomSearch | Evolution:
    """``RandomSearch()`` or ``Evolution(population, tournament, criterion)`` with their defaults,
    but for what a study is about: random search's ``baseline`` (:data:`BASELINES`), and evolution's
    options (:func:`evolution_options`)."""
    if algorithm == "random":
        return RandomSearch(seed=seed, **BASELINES[args.get("baseline", "paper")][0])
    return Evolution(args["population"], args["tournament"], criterion, seed=seed, **evolution_options(args))


def run_one(job: tuple) -> tuple[tuple, list[float]]:
    name, text, algorithm, criterion, seed, args = job
    torch.set_num_threads(1)
    fitness = FITNESS[args.get("outside_fitness", "error")](Genome.parse(text), args["probes"])
    search = make_search(algorithm, criterion, seed, args)
    batch = args.get("batch", 1)
    if batch == 1:
        history = search.run(fitness, args["budget"])
    else:  # as a user with `batch` parallel evaluations would drive it: ask them all, then tell them all
        while search.evaluated < args["budget"]:
            for genome in [search.ask() for _ in range(min(batch, args["budget"] - search.evaluated))]:
                search.tell(genome, fitness(genome))
        history = search.history
    best, curve = -np.inf, []
    for record in history:
        if record.objectives is not None:
            best = max(best, float(np.mean(record.objectives)))
        curve.append(best)
    floor = min((v for v in curve if np.isfinite(v)), default=-1.0)
    return (name, algorithm, criterion, seed), [v if np.isfinite(v) else floor for v in curve]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", default="b0,s1,gn_relu,random:4",
                    help="zoo names and random:N (default %(default)s)")
    ap.add_argument("--target-seed", type=int, default=5151, help="seed of the random targets (default %(default)s)")
    ap.add_argument("--min-live", type=int, default=3, help="live nodes of a random target, at least "
                                                             "(default %(default)s)")
    ap.add_argument("--probes", type=int, default=1,
                    help=f"probes of shapes {', '.join('x'.join(map(str, sh)) for sh in SHAPES)}, the first N, one "
                         "objective each (default %(default)s: one number)")
    ap.add_argument("--fitness", choices=sorted(FITNESS), default="error",
                    help="error: minus the normalised error (default); correlation: minus the correlation "
                         "distance 1 - r, blind to the output's scale and shift")
    ap.add_argument("--budget", type=int, default=400, help="evaluations per search (default %(default)s)")
    ap.add_argument("--seeds", type=int, default=10, help="seeds per algorithm (default %(default)s)")
    ap.add_argument("--first-seed", type=int, default=100, help="seeds run from here (default %(default)s)")
    ap.add_argument("--population", type=int, default=50, help="aging window (default %(default)s)")
    ap.add_argument("--tournament", type=int, default=10, help="tournament size (default %(default)s)")
    ap.add_argument("--criteria", default="pareto,average", help="winner criteria (default %(default)s)")
    ap.add_argument("--margin", type=float, default=1e-3,
                    help="least difference of final errors counted as a win (default %(default)s)")
    for key, (keyword, value, rest) in EVOLUTION_OPTIONS.items():
        ap.add_argument("--" + key.replace("_", "-"), action="store_true",
                        help=f"a study of an option: Evolution({keyword}={value}){rest}")
    ap.add_argument("--immigration", type=float, default=0.0,
                    help="a study of an option: Evolution(immigration=P), which answers that share of the asks "
                         "after the founders with a fresh random genome instead of a mutant (default 0)")
    ap.add_argument("--preselect", type=int, default=0,
                    help="a study of an option: Evolution(preselect=K), which draws K proposals per ask after the "
                         "founders and evaluates the one a behaviour model rates highest (default 0: off)")
    ap.add_argument("--baseline", choices=sorted(BASELINES), default="paper",
                    help="paper: RandomSearch() with its defaults (the paper's baseline, the default); strong: "
                         "RandomSearch(require_x=True, screen=True), whose layers all read x and pass the static "
                         "probe, as evolution's founders do")
    ap.add_argument("--batch", type=int, default=1,
                    help="ask this many genomes, then tell their scores, as a user evaluating them in "
                         "parallel would (default %(default)s: Searcher.run, one at a time)")
    ap.add_argument("--workers", type=int, default=2, help="processes (default %(default)s)")
    ap.add_argument("--plot", default="runs/outside-study.png", help="plot path (default %(default)s)")
    args = ap.parse_args()
    if args.batch < 1:
        ap.error(f"--batch must be at least 1, got {args.batch}")
    if args.preselect < 0:
        ap.error(f"--preselect must be 0 (off) or a number of proposals, got {args.preselect}")
    if not 0.0 <= args.immigration < 1.0:
        ap.error(f"--immigration must be in [0, 1), got {args.immigration}")
    criteria = args.criteria.split(",")
    chosen = targets(args.targets, args.target_seed, args.min_live)
    settings = {"budget": args.budget, "population": args.population, "tournament": args.tournament,
                "probes": args.probes, **{key: getattr(args, key) for key in EVOLUTION_OPTIONS},
                "outside_fitness": args.fitness, "batch": args.batch, "baseline": args.baseline,
                "immigration": args.immigration, "preselect": args.preselect}
    formula = FITNESS[args.fitness].formula
    print(f"fitness {formula} on N(0, 1) probes {', '.join(map(str, SHAPES[:args.probes]))}, one "
          f"objective each; budget {args.budget}; {args.seeds} seeds "
          f"from {args.first_seed}; Evolution({args.population}, {args.tournament}, criterion"
          + "".join(f", {keyword}={value}" for keyword, value in evolution_options(settings).items())
          + ") with its defaults; "
          + BASELINES[args.baseline][1]
          + (f"; asked and told {args.batch} at a time" if args.batch > 1 else ""))
    for name, g in chosen.items():
        FITNESS[args.fitness](g, args.probes)  # refuses a target with no usable output before any search
        print(f"  target {name}: {g.expression()}")
    results = run_searches(run_one, chosen, criteria, range(args.first_seed, args.first_seed + args.seeds),
                           settings, args.workers)
    curves: dict[tuple, list] = {}
    for (name, algorithm, criterion, _), curve in results:  # in seed order
        curves.setdefault((name, algorithm, criterion), []).append(curve)
    marks = sorted({args.budget // 4, args.budget // 2, args.budget})
    print(f"\n{'target':<10} {'criterion':<8} " + " ".join(f"{'@' + str(m):>15}" for m in marks)
          + "   W/T/L   p        sooner W/T/L   p")
    won = sooner_won = 0
    for name, c, evo, rnd, (w, t, lo, p), (ws, ts, ls, ps) in cell_tests(curves, chosen, criteria, args.margin):
        won += w >= 0.8 * args.seeds
        sooner_won += ws >= 0.8 * args.seeds
        cells = " ".join(f"{evo[:, m - 1].mean():>7.3f}/{rnd[:, m - 1].mean():<7.3f}" for m in marks)
        print(f"{name:<10} {c:<8} {cells}  {w:>2}/{t}/{lo}  {p:.4f}   {ws:>2}/{ts}/{ls}   {ps:.4f}")
    pairs = len(chosen) * len(criteria)
    print("(cells: evolution / random, mean over seeds of the best fitness so far (the mean over objectives), "
          f"0 = the target's function{FITNESS[args.fitness].zero})")
    print(f"evolution wins >= 80% of seeds in {won} of {pairs} target/criterion pairs "
          f"({sooner_won} with ties broken by evaluations needed)")
    path = Path(args.plot)
    options = "".join(f", {keyword}={value}" for keyword, value in evolution_options(settings).items())
    plot(curves, list(chosen), criteria, path,
         f"outside study: {formula}, pop {args.population}, tournament {args.tournament}{options}, "
         f"{args.seeds} seeds" + (f"; random = {BASELINES[args.baseline][1]}" if args.baseline != "paper" else ""),
         errors=True)
    save_curves(path.with_suffix(".json"),
                settings | {"seeds": args.seeds, "first_seed": args.first_seed, "fitness": "outside"}, chosen, curves)
    print(f"plot: {path}; curves: {path.with_suffix('.json')} (benchmarks/recount.py recounts them at another "
          "margin)")


if __name__ == "__main__":
    main()
