"""Evolution against random search with the same budget (the paper's Figure 10), on the real
proxy task, both logged to one MLflow experiment so that `evonorm report` draws them together.

    python scripts/evolution_vs_random.py --data ../shared/data/cifar10 --preset smoke --budget 30
"""

from __future__ import annotations

import argparse
import dataclasses

from evaluation import config as cfgmod
from evaluation.evaluate import Evaluator
from evaluation.experiment import Experiment, summary
from evaluation.tracking import Tracker
from gp.search import SerialExecutor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="smoke")
    ap.add_argument("--data", default="cifar10")
    ap.add_argument("--budget", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/evo-vs-random")
    ap.add_argument("--tracking-uri", default=None)
    ap.add_argument("--experiment", default="evonorm-vs-random")
    args = ap.parse_args()

    eval_cfg = cfgmod.override(cfgmod.load(args.preset), **{"data.source": args.data})
    evaluator = Evaluator(eval_cfg)  # one evaluator: the data is loaded once for both searches
    tracker = Tracker(args.tracking_uri, args.experiment)
    for algorithm in ("random", "evolution"):
        search_cfg = dataclasses.replace(cfgmod.load_search(args.preset), algorithm=algorithm,
                                         budget=args.budget, seed=args.seed, seed_layers=())
        exp = Experiment.create(f"{args.out}/{algorithm}", eval_cfg, search_cfg)
        exp.run(SerialExecutor(evaluator), tracker=tracker)
        print(summary(exp, top=3), "\n")
    print(f"compare them: evonorm report latest --experiment {args.experiment}")


if __name__ == "__main__":
    main()
