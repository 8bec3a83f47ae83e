"""How near, in structure, each search came to a known layer: its evaluated candidates counted by
how many of the reference's sub-expressions (those that read x) they hold, and the nearest ones
(``analysis.nearness``). Reads the searches' event logs; trains nothing.

    python scripts/nearness.py runs/figure10-plain-long/evolution-s0 runs/figure10-plain-long/random-s0 \\
        --reference bn_relu --budget 1000

A search that never holds more than one or two of the reference's parts never proposed a layer
near it, whatever it scored: the failure is then in what it draws, not in what it selects.
"""

from __future__ import annotations

import argparse
import sys

from analysis.nearness import nearness, table
from evaluation.layers import logged_history, resolve
from gp.genome import GenomeError


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("searches", nargs="+", help="search directories (each with its events.jsonl)")
    ap.add_argument("--reference", default="bn_relu",
                    help="the layer to look for: a zoo name, genome text or expression (default %(default)s)")
    ap.add_argument("--budget", type=int, default=None,
                    help="only each search's first N evaluations (default: all), to compare equal budgets")
    ap.add_argument("--top", type=int, default=5, help="nearest candidates listed per search (default %(default)s)")
    args = ap.parse_args(argv)
    if args.budget is not None and args.budget < 1:
        ap.error(f"--budget must be at least 1, got {args.budget}")
    try:
        label, reference = resolve(args.reference)
    except (GenomeError, KeyError, ValueError) as exc:
        ap.error(f"--reference {args.reference!r}: {exc}")
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
    print("\n".join(table(results)))


if __name__ == "__main__":
    sys.exit(main())
