"""The ``evonorm`` command: parsing and wiring only; the work lives in the packages."""

from __future__ import annotations

import argparse
import sys

LAYER_HELP = ("a zoo name (see 'evonorm zoo'), genome text such as 't1 = mul(v1, x); t2 = sigmoid(t1)' "
              "or an expression such as 'div(x, std_group(x))'")


def _cmd_zoo(args: argparse.Namespace) -> int:
    from gp import formula, zoo

    width = max(len(n) for n in zoo.names())
    for name in zoo.names():
        print(f"{name:<{width}}  {formula(zoo.get(name), latex=args.latex)}")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from gp import formula, zoo

    g = zoo.resolve(args.layer)
    rows = [
        ("formula", formula(g)),
        ("latex", formula(g, latex=True)),
        ("genome", str(g)),
        ("canonical", str(g.canonical)),
        ("expression", g.expression()),
        ("key", g.key),
        ("live nodes", f"{g.live_nodes} of {len(g.nodes)}"),
        ("batch stats", "yes (needs running estimates at inference)" if g.uses_batch else "no"),
    ]
    for label, value in rows:
        print(f"{label:<11} {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evonorm",
        description="Search normalization-activation layers by genetic programming "
                    "(Liu et al., Evolving Normalization-Activation Layers, NeurIPS 2020).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("zoo", help="list the known layers with their formulas",
                       description="List the known layers (BN-ReLU, EvoNorm-B0/S0, ...) as formulas.")
    p.add_argument("--latex", action="store_true", help="print LaTeX instead of plain text")
    p.set_defaults(func=_cmd_zoo)

    p = sub.add_parser("show", help="describe one layer: formula, canonical text, key, ...",
                       description="Describe one layer: formula, canonical genome text, key, live nodes "
                                   "and whether it needs batch statistics.")
    p.add_argument("layer", metavar="LAYER", help=LAYER_HELP)
    p.set_defaults(func=_cmd_show)

    for extra in _EXTRA_COMMANDS:
        extra(sub)
    return parser


_EXTRA_COMMANDS: list = []


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # output piped into `head`
        return 0
    except (ValueError, KeyError, FileNotFoundError) as exc:
        # errors a user can cause: one line, no traceback
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"evonorm {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
