"""Re-score the best layers of a Figure 10 run from its summary JSON (the ``--plot`` path's
``.json``, which keeps each search's best layer), when the search directories are gone: each
best layer and the reference are trained again with N fresh seeds, and evolution is compared with
random search on those scores. The same as ``figure10.py --rescore N``; see its docstring for why.

    python scripts/rescore_bests.py docs/figure10-tiny-lr02.json --data ../shared/data/cifar10 \\
        --seeds 3 --out runs/rescore-lr02
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

from evaluation import config as cfgmod
from evaluation.evaluate import Evaluator


def _figure10():
    spec = importlib.util.spec_from_file_location("figure10", Path(__file__).with_name("figure10.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("summary", help="a Figure 10 summary JSON (figure10.py writes it beside the plot)")
    ap.add_argument("--data", default="cifar10", help="data source (offline: ../shared/data/cifar10)")
    ap.add_argument("--preset", help="evaluation preset (default: the one the summary names)")
    ap.add_argument("--seeds", type=int, default=3, help="fresh seeds per layer (default %(default)s)")
    ap.add_argument("--out", default="runs/rescore", help="where the scores are cached (default %(default)s)")
    args = ap.parse_args()
    if args.seeds < 1:
        ap.error(f"--seeds must be at least 1, got {args.seeds}")
    summary = json.loads(Path(args.summary).read_text())
    fig = _figure10()
    eval_cfg = cfgmod.override(cfgmod.load(args.preset or summary["preset"]), **{"data.source": args.data})
    reference, best = summary["reference"], {a: [tuple(f) for f in finals] for a, finals in summary["best"].items()}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scores = fig.rescore(fig.rescored_layers(best, reference), eval_cfg, Evaluator(eval_cfg), args.seeds, out)
    print("\n".join(fig.compare_rescored(best, scores, reference, args.seeds)))


if __name__ == "__main__":
    main()
