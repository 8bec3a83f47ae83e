"""A paper-style search: layers with batch statistics, Pareto tournament over three anchors.

Copy and adapt. Runs with the Python API (no CLI):

    python scripts/paper_search.py --data ../shared/data/cifar10 --preset cpu --budget 50 --workers 2

Every candidate is logged to MLflow (default: sqlite:///mlflow.db here; see `mlflow ui`), and the
search is checkpointed in --out, so `evonorm search --resume OUT` continues it after a crash.
"""

from __future__ import annotations

import argparse
import dataclasses

from evaluation import config as cfgmod
from evaluation.executors import make_executor
from evaluation.experiment import Experiment, run_live, summary
from evaluation.tracking import Tracker


def main(batch_stats: bool = True, default_out: str = "runs/paper-search") -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--data", default="cifar10")
    ap.add_argument("--budget", type=int, default=50)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--executor", default=None, help="serial | process | ray (default: serial for 1 worker)")
    ap.add_argument("--seed", type=int, default=0, help="RNG seed of the search (default %(default)s)")
    ap.add_argument("--seed-layers", nargs="*", default=[], metavar="ZOO_NAME",
                    help="zoo layers to place in the initial population (default: none, a random start; "
                         "seeding with e.g. evonorm_b0 starts the search from a known answer)")
    ap.add_argument("--population", type=int, default=None, help="the aging window (default: the preset's)")
    ap.add_argument("--tournament", type=int, default=None, help="tournament size (default: the preset's)")
    ap.add_argument("--out", default=default_out)
    ap.add_argument("--tracking-uri", default=None)
    ap.add_argument("--experiment", default="evonorm")
    args = ap.parse_args()

    eval_cfg = cfgmod.override(cfgmod.load(args.preset), **{"data.source": args.data})
    preset = cfgmod.load_search(args.preset)
    search_cfg = cfgmod.validate(dataclasses.replace(
        preset, algorithm="evolution", criterion="pareto", batch_stats=batch_stats, budget=args.budget,
        seed=args.seed, seed_layers=tuple(args.seed_layers),
        population_size=preset.population_size if args.population is None else args.population,
        tournament_size=preset.tournament_size if args.tournament is None else args.tournament))
    tracker = Tracker(args.tracking_uri, args.experiment)
    exp = Experiment.create(args.out, eval_cfg, search_cfg)
    kind = args.executor or ("serial" if args.workers == 1 else "process")
    run_live(exp, make_executor(kind, eval_cfg, args.workers), tracker)
    print(summary(exp))
    print(f"MLflow run {exp.run_id}; report: evonorm report {exp.run_id}")


if __name__ == "__main__":
    main()
