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


def _eval_config(args: argparse.Namespace):
    """The preset or config file, with the command line's overrides."""
    from evaluation import config as cfgmod

    cfg = cfgmod.load(args.config or args.preset)
    changes = {}
    if args.steps is not None:
        changes["train.steps"] = args.steps
    if args.data is not None:
        changes["data.source"] = args.data
    if args.device is not None:
        changes["device"] = args.device
    if args.seed is not None:
        changes["seed"] = args.seed
    if args.arch:
        import architectures

        listed = {a.arch: a for a in cfg.anchors}
        changes["anchors"] = tuple(listed.get(n) or cfgmod.AnchorConfig(n, architectures.default_width(n))
                                   for n in args.arch)
    return cfgmod.override(cfg, **changes)


def _cmd_eval(args: argparse.Namespace) -> int:
    from evaluation.evaluate import Evaluator
    from evaluation.progress import ProgressLine
    from gp import formula, zoo

    genome = zoo.resolve(args.layer)
    cfg = _eval_config(args)
    line = ProgressLine()
    evaluator = Evaluator(cfg, progress=line.training)
    line.show(f"loading data from {cfg.data.source} ...", force=True)
    evaluator.data  # noqa: B018 - load now, so that data errors come before any training
    result = evaluator(genome)
    line.done()
    if args.json:
        print(result.to_json())
        return 0
    print(f"layer    {formula(genome)}")
    print(f"key      {result.key}")
    print(f"status   {result.status.value}" + (f" at stage {result.stage}: {result.reason}" if result.reason else ""))
    print(f"\n{'anchor':<16} {'width':>6} {'params':>9} {'steps':>6} {'val acc':>8}")
    for a in cfg.anchors:
        acc = result.accuracies.get(a.arch)
        steps = cfg.train.steps if acc is not None else (result.step if result.anchor == a.arch else 0)
        params = result.params.get(a.arch)
        print(f"{a.arch:<16} {a.width:>6g} {params if params is not None else '-':>9} {steps:>6} "
              f"{f'{acc:.3f}' if acc is not None else '-':>8}")
    print("\nseconds  " + ", ".join(f"{k} {v:.1f}" for k, v in result.timings.items()))
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

    p = sub.add_parser(
        "eval", help="score one layer on the anchor networks (proxy training with rejection)",
        description="Score one layer as the paper does: a static probe, then on each anchor network a "
                    "stability test and a short proxy training on CIFAR, with quality and budget checks. "
                    "Prints a per-anchor table, or the EvalResult as JSON.")
    p.add_argument("layer", metavar="LAYER", help=LAYER_HELP)
    _add_eval_options(p)
    p.add_argument("--json", action="store_true", help="print the EvalResult as JSON")
    p.set_defaults(func=_cmd_eval)
    return parser


def _add_eval_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="cpu", metavar="NAME",
                   help="configs/NAME.toml: smoke (seconds, for tests), cpu (2-core CPU, ~2 min a layer), "
                        "paper (GPU, the paper's widths); default: cpu")
    p.add_argument("--config", metavar="FILE", help="a TOML config file (instead of --preset)")
    p.add_argument("--arch", nargs="+", metavar="NAME",
                   help="anchors to use: resnet50, mobilenetv2, efficientnet_b0 (default: the preset's)")
    p.add_argument("--steps", type=int, metavar="N", help="training steps per anchor")
    p.add_argument("--data", metavar="PATH",
                   help="cifar10, cifar100 (downloaded into the cache) or an ImageFolder directory with "
                        "train/ and test/, e.g. ../shared/data/cifar10")
    p.add_argument("--device", metavar="DEVICE", help="cpu, cuda or cuda:N (default: the preset's)")
    p.add_argument("--seed", type=int, metavar="S", help="seed for initialisation and batch order")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # output piped into `head`
        return 0
    except (ValueError, KeyError, FileNotFoundError, RuntimeError) as exc:
        # errors a user can cause: one line, no traceback
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"evonorm {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
