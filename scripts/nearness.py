"""How near, in structure, each search came to a known layer: its evaluated candidates counted by
how many of the reference's sub-expressions (those that read x) they hold, and the nearest ones
(``analysis.nearness``). Reads the searches' event logs; trains nothing.

    python scripts/nearness.py runs/figure10-plain-long/evolution-s0 runs/figure10-plain-long/random-s0 \\
        --reference bn_relu --budget 1000

A search that never holds more than one or two of the reference's parts never proposed a layer
near it, whatever it scored: the failure is then in what it draws, not in what it selects.

Two counts that need no search, to set a search's against (seeded, so they repeat exactly):

    python scripts/nearness.py --prior 100000                     # draws of the paper's generator
    python scripts/nearness.py --children 20000 --parents 'tanh(x)' \
        'div(add(x, neg(mean_batch(x))), std_batch(x))' --mutation indel   # one child of each

``--prior N`` counts the parts in N random graphs of the paper's generator (what random search
and evolution's founders draw); ``--children N`` in N children of each ``--parents`` layer made
by the search's mutation (repeats included, as ``Evolution`` makes them): the chance that one
mutation adds a part, or takes some away.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from analysis.nearness import held, nearness, parts, reference_parts, table
from evaluation.layers import logged_history, resolve
from gp.genome import GenomeError
from gp.space import SearchSpace
from gp.variation import STEPS, mutate, pad, random_genome


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("searches", nargs="*", help="search directories (each with its events.jsonl)")
    ap.add_argument("--reference", default="bn_relu",
                    help="the layer to look for: a zoo name, genome text or expression (default %(default)s)")
    ap.add_argument("--budget", type=int, default=None,
                    help="only each search's first N evaluations (default: all), to compare equal budgets")
    ap.add_argument("--top", type=int, default=5, help="nearest candidates listed per search (default %(default)s)")
    ap.add_argument("--prior", type=int, default=0, metavar="N",
                    help="also count the parts in N random graphs of the paper's generator")
    ap.add_argument("--children", type=int, default=0, metavar="N",
                    help="also count the parts in N children of each --parents layer")
    ap.add_argument("--parents", nargs="+", default=(), metavar="LAYER", help="layers to mutate for --children")
    ap.add_argument("--mutation", default="indel", choices=sorted(STEPS),
                    help="mutation step for --children (default %(default)s, the search's)")
    ap.add_argument("--repeat", type=float, default=0.5,
                    help="chance of each further mutation step, as the search's mutation_repeat (default %(default)s)")
    ap.add_argument("--seed", type=int, default=0, help="seed of --prior and --children (default %(default)s)")
    args = ap.parse_args(argv)
    if args.budget is not None and args.budget < 1:
        ap.error(f"--budget must be at least 1, got {args.budget}")
    if not (args.searches or args.prior or args.children):
        ap.error("nothing to count: give search directories, --prior N or --children N")
    if args.prior < 0 or args.children < 0:
        ap.error(f"--prior and --children must be at least 0, got {args.prior} and {args.children}")
    if bool(args.children) != bool(args.parents):
        ap.error("--children N and --parents LAYER... go together")
    if not 0.0 <= args.repeat < 1.0:
        ap.error(f"--repeat must be in [0, 1), got {args.repeat}")
    try:
        label, reference = resolve(args.reference)
        wanted = reference_parts(reference)
        parents = [resolve(p) for p in args.parents]
    except (GenomeError, KeyError, ValueError) as exc:
        ap.error(f"{exc}")
    results = []
    for d in args.searches:
        try:
            records = logged_history(d)
        except FileNotFoundError as exc:
            ap.error(str(exc))
        records = records[:args.budget] if args.budget else records
        short = "" if args.budget is None or len(records) >= args.budget else f" (only {len(records)})"
        results.append((f"{d.rstrip('/')}{short}", nearness(records, reference, args.top)))
    print(f"reference {label}: {reference.expression()}")
    if results:
        print("\n".join(table(results)))
    total = len(wanted)
    space = SearchSpace()
    if args.prior:
        rng = np.random.default_rng(args.seed)
        counts = held((random_genome(rng, space) for _ in range(args.prior)), reference)
        print(f"{args.prior} random graphs of the paper's generator, by parts held: " + _fractions(counts, total))
    for name, parent in parents:
        rng = np.random.default_rng(args.seed)
        start = len(wanted & parts(parent))
        children = (mutate(pad(parent, space.max_nodes, rng, space), rng, space, step=args.mutation,
                           repeat=args.repeat) for _ in range(args.children))
        counts = held(children, reference)
        print(f"{args.children} children ({args.mutation}, repeat {args.repeat}) of {name} = "
              f"{parent.expression()}, which holds {start}/{total}: " + _fractions(counts, total))


def _fractions(counts: tuple[int, ...], total: int) -> str:
    n = sum(counts)
    return ", ".join(f"{k}/{total}: {c} ({c / n:.2%})" for k, c in enumerate(counts) if c)


if __name__ == "__main__":
    sys.exit(main())
