"""The ``evonorm`` command: parsing and wiring only; the work lives in the packages."""

from __future__ import annotations

import argparse
import sys
import textwrap

LAYER_HELP = ("a zoo name (see 'evonorm zoo'), genome text such as 't1 = mul(v1, x); t2 = sigmoid(t1)' "
              "or an expression such as 'div(x, std_group(x))'")
TRACKED_LAYER_HELP = LAYER_HELP + (", or RUN_ID:RANK, the RANK-th best layer of a tracked search ('latest:1'), or "
                                   "DIR:RANK, the same of the search in directory DIR ('runs/search:1')")


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


def _cmd_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from evaluation.layers import resolve
    from gp import export_source

    _, genome = resolve(args.layer, tracking_uri=args.tracking_uri, experiment=args.experiment)
    source = export_source(genome, class_name=args.class_name)
    if args.out is None:
        sys.stdout.write(source)
        return 0
    Path(args.out).write_text(source)
    print(f"wrote {args.out}", file=sys.stderr)
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


def _cmd_search(args: argparse.Namespace) -> int:
    import dataclasses
    import signal
    import time
    from pathlib import Path

    from evaluation import config as cfgmod
    from evaluation.executors import make_executor
    from evaluation.experiment import Experiment, Interrupted, apply_changes, run_live, summary, tracked_config
    from gp.search import SearchAborted

    if args.resume and args.resume_run:
        raise ValueError("give --resume DIR or --resume-run RUN_ID, not both")
    if args.resume or args.resume_run:
        flags = ("preset", "config", "steps", "arch", "seed", "algorithm", "criterion", "seed_layers") \
            + (("out",) if args.resume else ("data", "device"))
        fixed = [f"--{k.replace('_', '-')}" for k in flags if getattr(args, k) is not None]
        if fixed:
            option = "--resume" if args.resume else "--resume-run"
            raise ValueError(f"{option} continues a search with its own config; drop {', '.join(fixed)}")
    if args.resume_run and args.no_tracking:
        raise ValueError("--resume-run reads the tracking store; drop --no-tracking")

    def on_signal(signum, frame):
        raise Interrupted(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    tracker = None
    if not args.no_tracking:
        from evaluation.tracking import Tracker

        tracker = Tracker(args.tracking_uri, args.experiment)  # checked before any training
    changes = {"search.budget": args.budget, "search.executor": args.executor, "search.workers": args.workers,
               "eval.data.source": args.data, "eval.device": args.device, "ray_address": args.ray_address}
    executor = exp = None
    try:
        if args.resume:
            exp = Experiment.resume(Path(args.resume), changes)
            print(f"resuming {args.resume}: {exp.searcher.evaluated} evaluated, {len(exp.searcher.pending)} to "
                  "submit again", file=sys.stderr)
            executor = _executor(make_executor, exp.search_cfg, exp.eval_cfg, exp.options.get("ray_address"))
        else:
            if args.resume_run:
                run_id = tracker.resolve(args.resume_run)
                tracker.check_free(run_id)
                eval_cfg, search_cfg = tracked_config(tracker, run_id)
                out = Path(args.out or f"runs/resumed-{run_id[:8]}")
            else:
                args.preset = args.preset or "cpu"
                eval_cfg = _eval_config(args)
                search_cfg = cfgmod.load_search(args.config or args.preset)
                overrides = {"algorithm": args.algorithm, "criterion": args.criterion, "seed": args.seed,
                             "seed_layers": tuple(args.seed_layers) if args.seed_layers is not None else None}
                search_cfg = dataclasses.replace(search_cfg, **{k: v for k, v in overrides.items() if v is not None})
                out = Path(args.out or f"runs/search-{time.strftime('%Y%m%d-%H%M%S')}")
            eval_cfg, search_cfg, _ = apply_changes(eval_cfg, search_cfg, {}, changes)
            if Experiment.exists(out):
                raise FileExistsError(f"{out} already holds a search; continue it with --resume {out} or pick "
                                      "another --out")
            executor = _executor(make_executor, search_cfg, eval_cfg, args.ray_address)
            if args.resume_run:
                exp = Experiment.from_tracking(tracker, run_id, out, changes)
                print(f"resuming run {exp.run_id} from {tracker.uri}: {exp.searcher.evaluated} evaluated",
                      file=sys.stderr)
            else:
                exp = Experiment.create(out, eval_cfg, search_cfg, options={"ray_address": args.ray_address})
        run_live(exp, executor, tracker)
    except Interrupted as exc:
        where = f"; continue it with --resume {exp.out}" if exp is not None else ""
        print(f"evonorm search: interrupted by {signal.Signals(exc.signum).name}{where}", file=sys.stderr)
        return 128 + exc.signum
    except SearchAborted as exc:
        print(f"evonorm search: error: {exc}\nfix it and continue with --resume {exp.out}", file=sys.stderr)
        return 2
    finally:
        if executor is not None:
            executor.close()
        if exp is not None:
            exp.close()
    print(summary(exp))
    if tracker is not None:
        n = len(exp.searcher.history)
        print(f"tracked as run {exp.run_id} in {tracker.uri} (experiment {tracker.experiment}); logging took "
              f"{tracker.seconds / max(1, n) * 1e3:.0f} ms per candidate")
    return 0


def _executor(make_executor, search_cfg, eval_cfg, ray_address):
    """Workers up and data loaded, or the reason why not, before the search writes anything."""
    return make_executor(search_cfg.executor, eval_cfg, search_cfg.workers, ray_address=ray_address)


def _cmd_transfer(args: argparse.Namespace) -> int:
    import dataclasses

    from evaluation import transfer
    from evaluation.layers import resolve
    from evaluation.progress import ProgressLine

    specs = [resolve(s, tracking_uri=args.tracking_uri, experiment=args.experiment) for s in args.layer]
    args.preset = args.preset or "cpu"
    eval_cfg = _eval_config(args)
    if args.batch_size is not None:
        eval_cfg = dataclasses.replace(eval_cfg, train=dataclasses.replace(eval_cfg.train, batch_size=args.batch_size))
    if args.no_act is not None:
        eval_cfg = dataclasses.replace(eval_cfg, train=dataclasses.replace(eval_cfg.train, no_act=args.no_act))
    cfg = transfer.from_eval_config(eval_cfg, model=args.model, seeds=args.seeds, split=args.split,
                                    references=tuple(args.references), small_input_stem=args.small_input_stem)
    tracker = None
    if not args.no_tracking:
        from evaluation.tracking import Tracker

        tracker = Tracker(args.tracking_uri, args.experiment)  # checked before any training
    line = ProgressLine()
    rows = transfer.run_transfer(specs, cfg, progress=line.training)
    line.done()
    print(transfer.table(rows, cfg))
    if tracker is not None:
        run_id = transfer.log(tracker, rows, cfg)
        print(f"\nlogged as run {run_id} in {tracker.uri} (experiment {tracker.experiment})")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from pathlib import Path

    from analysis.sweep import plot
    from evaluation import sweep, transfer
    from evaluation.layers import resolve
    from evaluation.progress import ProgressLine

    specs = [resolve(s, tracking_uri=args.tracking_uri, experiment=args.experiment) for s in args.layer]
    args.preset = args.preset or "cpu"
    cfg = transfer.from_eval_config(_eval_config(args), model=args.model, seeds=args.seeds, split=args.split,
                                    references=tuple(args.references), small_input_stem=args.small_input_stem)
    tracker = None
    if not args.no_tracking:
        from evaluation.tracking import Tracker

        tracker = Tracker(args.tracking_uri, args.experiment)  # checked before any training
    line = ProgressLine()
    points = sweep.batch_sweep(specs, cfg, args.batch_sizes, args.images, progress=line.training)
    line.done()
    print(sweep.table(points))
    out = plot(sweep.curves(points), Path(args.out), title=f"{cfg.model}, {args.images} training images per run")
    print(f"\nplot: {out}")
    if tracker is not None:
        run_id = sweep.log(tracker, points, cfg, out)
        print(f"logged as run {run_id} in {tracker.uri} (experiment {tracker.experiment})")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from analysis.report import write_report
    from evaluation.tracking import Tracker

    tracker = Tracker(args.tracking_uri, args.experiment)
    run_id = tracker.resolve(args.run)
    out = Path(args.out or f"reports/{run_id[:8]}")
    page = write_report(tracker, run_id, out, top=args.top)
    if not args.no_upload:
        tracker.log_artifacts(out, run_id)
    print(f"report: {page}" + ("" if args.no_upload else f" (also logged to run {run_id} as artifacts)"))
    return 0


def _cmd_rerank(args: argparse.Namespace) -> int:
    from evaluation.progress import ProgressLine
    from evaluation.rerank import rerank, table
    from evaluation.tracking import Tracker

    tracker = Tracker(args.tracking_uri, args.experiment)
    args.preset = args.preset or "cpu"
    cfg = _eval_config(args)
    line = ProgressLine()
    rows, run_id = rerank(tracker, args.run, cfg, top=args.top, seeds=args.seeds, split=args.split,
                          references=tuple(args.beside), progress=line.training)
    line.done()
    print(table(rows, [a.arch for a in cfg.anchors]))
    print(f"\nlogged as run {run_id} ({args.split} split, {args.seeds} seeds per layer and anchor)")
    return 0


class _HelpFormatter(argparse.HelpFormatter):
    """Paragraphs filled to the terminal's width, never breaking a flag at its hyphen; a paragraph
    with lines indented by two spaces (examples, lists) printed as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out = []
        for para in text.split("\n\n"):
            if any(line.startswith("  ") for line in para.splitlines()):
                out.append("\n".join(indent + line for line in para.splitlines()))
            else:
                out.append(textwrap.fill(" ".join(para.split()), width, initial_indent=indent,
                                         subsequent_indent=indent, break_on_hyphens=False))
        return "\n\n".join(out)

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


OFFLINE = "--data ../shared/data/cifar10"  # the offline copy beside a checkout, used in the examples


def _subcommand(sub, name: str, help: str, description: str, examples: tuple[str, ...]) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help, description=description, epilog=_examples(*examples),
                          formatter_class=_HelpFormatter)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evonorm", formatter_class=_HelpFormatter,
        description="Search normalization-activation layers by genetic programming "
                    "(Liu et al., Evolving Normalization-Activation Layers, NeurIPS 2020).",
        epilog=_examples("evonorm zoo", f"evonorm eval evonorm_s0 --preset smoke {OFFLINE}",
                         f"evonorm search --preset fast {OFFLINE} --budget 200", "evonorm report latest",
                         "evonorm export latest:1 --out best.py") +
        "\n\nEvery command has its own examples and defaults: evonorm COMMAND --help.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _subcommand(sub, "zoo", "list the known layers with their formulas",
                    "List the known layers (BN-ReLU, EvoNorm-B0/S0, ...) as formulas.",
                    ("evonorm zoo", "evonorm zoo --latex"))
    p.add_argument("--latex", action="store_true", help="print LaTeX instead of plain text (default: plain text)")
    p.set_defaults(func=_cmd_zoo)

    p = _subcommand(sub, "show", "describe one layer: formula, canonical text, key, ...",
                    "Describe one layer: formula, canonical genome text, key, live nodes and whether it needs "
                    "batch statistics.",
                    ("evonorm show evonorm_b0", "evonorm show 'div(x, std_group(x))'",
                     "evonorm show 't1 = mul(v1, x); t2 = sigmoid(t1); t3 = mul(x, t2)'"))
    p.add_argument("layer", metavar="LAYER", help=LAYER_HELP)
    p.set_defaults(func=_cmd_show)

    p = _subcommand(
        sub, "export", "write a layer as a standalone PyTorch module (no evonorm import)",
        "Write one layer as a self-contained PyTorch source file: one nn.Module with the norm-act constructor "
        "(num_features, *, apply_act=True, device=None, dtype=None), running estimates for batch statistics, the "
        "formula in its docstring and the same numerics as evonorm's compiled layer; apply_act=False gives the "
        "per-channel affine alone.",
        ("evonorm export evonorm_s0 --out s0.py",
         "evonorm export 'div(x, std_group(x))' --class-name GroupStd > gstd.py",
         "evonorm export latest:1 --out best.py     # the newest tracked search's best layer"))
    p.add_argument("layer", metavar="LAYER", help=TRACKED_LAYER_HELP)
    p.add_argument("--out", metavar="FILE", help="file to write (default: print to standard output)")
    p.add_argument("--class-name", metavar="NAME",
                   help="the module's class name (default: the zoo name in CamelCase, else EvolvedNormAct)")
    _add_tracking_options(p)
    p.set_defaults(func=_cmd_export)

    p = _subcommand(
        sub, "eval", "score one layer on the anchor networks (proxy training with rejection)",
        "Score one layer as the paper does: a static probe, then on each anchor network a stability test and a "
        "short proxy training on CIFAR, with quality and budget checks. Prints a per-anchor table, or the "
        "EvalResult as JSON.",
        (f"evonorm eval evonorm_b0 {OFFLINE}                 # preset cpu: ~2 min on 2 cores",
         f"evonorm eval 'div(x, std_group(x))' --preset smoke {OFFLINE} --json",
         f"evonorm eval bn_relu --arch resnet50 --steps 300 {OFFLINE}"))
    p.add_argument("layer", metavar="LAYER", help=LAYER_HELP)
    _add_eval_options(p)
    p.add_argument("--json", action="store_true", help="print the EvalResult as JSON (default: a table)")
    p.set_defaults(func=_cmd_eval)

    p = _subcommand(
        sub, "search", "evolve layers: aging-window Pareto tournament (or random search)",
        "Search the layer space: regularised tournament evolution with a Pareto (or average) winner over the "
        "anchors' accuracies, or random search as the baseline. Evaluations run asynchronously on the chosen "
        "executor; the search is saved in --out after every candidate and continues after a kill with "
        "--resume DIR.\n\n"
        "--resume DIR continues with the search's own config: of the flags below it honours only --budget, "
        "--executor, --workers, --data, --device and --ray-address (a machine may change; what was searched "
        "may not), and any other config flag (--preset, --config, --steps, --arch, --seed, --algorithm, "
        "--criterion, --seed-layers, --out) is an error. --resume-run RUN_ID rebuilds the search from the "
        "tracking store into a new directory (--out) and honours --budget, --executor, --workers and "
        "--ray-address; the other config flags, --data and --device included, are errors there.",
        (f"evonorm search --preset fast {OFFLINE} --budget 200",
         f"evonorm search --preset fast {OFFLINE} --algorithm random --out runs/random   # the baseline",
         f"evonorm search --preset paper {OFFLINE} --executor process --workers 8   # one GPU each",
         "evonorm search --resume runs/search-20261127-101500 --budget 300",
         "evonorm search --resume-run latest --out runs/continued"))
    _add_eval_options(p, preset_default=None)
    p.add_argument("--algorithm", choices=["evolution", "random"], help="default: the preset's (evolution)")
    p.add_argument("--criterion", choices=["pareto", "average"],
                   help="tournament winner (default: the preset's, pareto)")
    p.add_argument("--budget", type=int, metavar="N",
                   help="evaluations to finish, duplicates excluded (default: the preset's: smoke 30, cpu 100, "
                        "fast 200, paper 5000)")
    p.add_argument("--seed-layers", nargs="*", metavar="NAME",
                   help="zoo layers placed first in the initial population, e.g. bn_relu evonorm_b0 "
                        "(default: none, a random population)")
    p.add_argument("--workers", type=int, metavar="W",
                   help="evaluations in flight (default: the preset's, 1; always 1 with --executor serial)")
    p.add_argument("--executor", choices=["serial", "process", "ray"],
                   help="where evaluations run (default: the preset's: serial, process for paper)")
    p.add_argument("--ray-address", metavar="ADDR", help="a running Ray cluster (default: start a local one)")
    p.add_argument("--out", metavar="DIR", help="directory of the search (default: runs/search-TIMESTAMP; with "
                                                "--resume-run runs/resumed-RUNID)")
    p.add_argument("--resume", metavar="DIR", help="continue the search saved in DIR (default: start a new one)")
    p.add_argument("--resume-run", metavar="RUN_ID",
                   help="continue a search from its MLflow parent run (or 'latest'), without its saved directory "
                        "(default: start a new one)")
    _add_tracking_options(p)
    p.add_argument("--no-tracking", action="store_true", help="do not log to MLflow (default: log)")
    p.set_defaults(func=_cmd_search)

    p = _subcommand(
        sub, "transfer", "train torchvision models with found layers beside BN-ReLU and GN-ReLU",
        "Train a torchvision classification model from scratch with its norm-activation layers replaced by each "
        "LAYER, beside the references (native BN-ReLU and GN-ReLU), several seeds each; print mean ± sd accuracy "
        "and log one MLflow run per study (a child run per layer).\n\n"
        "Replaced: every BatchNorm2d whose only user is an activation (the pair becomes the layer); a "
        "BatchNorm2d with no activation after it becomes the layer with apply_act=False (the affine for "
        "candidates under --no-act affine, BN for bn_relu, GN for gn_relu); activations after a residual "
        "addition stay. Images <= 64 px get a stride-1 stem.\n\n"
        "Data, schedule (steps, batch size, learning rate), device and seed come from --preset (default: cpu: "
        "100 steps of batch 32 at lr 0.05, accuracy on 1000 held-out training images); the test split is used "
        "only with --split test (then training uses the whole training split).",
        (f"evonorm transfer evonorm_s0 --model resnet18 {OFFLINE} --steps 400 --seeds 2",
         f"evonorm transfer latest:1 evonorm_b0 --model mobilenet_v3_small {OFFLINE} --seeds 5 --split test",
         f"evonorm transfer evonorm_s0 --references --model regnet_y_400mf {OFFLINE}   # no references"))
    p.add_argument("layer", metavar="LAYER", nargs="*", help=TRACKED_LAYER_HELP + " (default: none, the "
                                                                                  "references alone)")
    p.add_argument("--model", default="resnet18", metavar="NAME",
                   help="a torchvision classification model with BatchNorm2d: resnet18, resnet50, mobilenet_v2, "
                        "mobilenet_v3_small, regnet_y_400mf, efficientnet_b0, ... (default: resnet18)")
    p.add_argument("--seeds", type=int, default=3, metavar="S",
                   help="seeds per layer: --seed, --seed + 1, ... (default: 3)")
    p.add_argument("--split", choices=["val", "test"], default="val",
                   help="score on the held-out part of the training split, or on the test split (default: val)")
    p.add_argument("--references", nargs="*", default=list(("bn_relu", "gn_relu")), metavar="NAME",
                   help="native reference layers trained too: bn_relu, gn_relu (default: both; none: no value)")
    p.add_argument("--batch-size", type=int, metavar="B", help="training batch size (default: the preset's, 32)")
    p.add_argument("--no-act", choices=["affine", "candidate", "batchnorm"],
                   help="a candidate where a norm has no activation after it (default: the preset's, affine)")
    p.add_argument("--small-input-stem", choices=["auto", "on", "off"], default="auto",
                   help="stride-1 stem and no max-pool (default: auto, for images of at most 64 px)")
    _add_eval_options(p, preset_default=None, anchors=False, steps_help="training steps per layer and seed")
    _add_tracking_options(p)
    p.add_argument("--no-tracking", action="store_true", help="do not log to MLflow (default: log)")
    p.set_defaults(func=_cmd_transfer, arch=None)

    p = _subcommand(
        sub, "sweep", "the small-batch test: accuracy against batch size, plotted",
        "Train a torchvision model with each LAYER (and the references) at every batch size, the learning rate "
        "scaled linearly from the preset's (lr * b / batch_size; cpu: 0.05 at 32) and the same number of "
        "training images seen at every size (--images // b steps); print mean ± sd accuracy, plot it against "
        "batch size (the paper's Figure 1, right) and log it to MLflow. Accuracy is measured in eval mode, "
        "with running estimates for batch statistics. Layers replace the network's norm-activation pairs as in "
        "'evonorm transfer'; data, device and seed come from --preset (default: cpu).",
        (f"evonorm sweep evonorm_s0 --references bn_relu --model resnet18 {OFFLINE} --small-input-stem off \\",
         "    --batch-sizes 128 32 8 2 --images 6400 --seeds 2 --out sweep.png",
         f"evonorm sweep evonorm_s0 evonorm_b0 --model resnet18 {OFFLINE} --images 25600"))
    p.add_argument("layer", metavar="LAYER", nargs="*", help=TRACKED_LAYER_HELP + " (default: none, the "
                                                                                  "references alone)")
    p.add_argument("--model", default="resnet18", metavar="NAME", help="a torchvision model (default: resnet18)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 32, 8, 2], metavar="B",
                   help="batch sizes to train at (default: 128 32 8 2)")
    p.add_argument("--images", type=int, default=12800, metavar="N",
                   help="training images seen at every batch size (default: 12800)")
    p.add_argument("--seeds", type=int, default=1, metavar="S", help="seeds per layer and batch size (default: 1)")
    p.add_argument("--split", choices=["val", "test"], default="val", help="score on (default: val)")
    p.add_argument("--references", nargs="*", default=["bn_relu", "gn_relu"], metavar="NAME",
                   help="native reference layers trained too (default: bn_relu gn_relu; none: no value)")
    p.add_argument("--small-input-stem", choices=["auto", "on", "off"], default="auto",
                   help="stride-1 stem and no max-pool (default: auto, for images of at most 64 px)")
    p.add_argument("--out", default="sweep.png", metavar="FILE", help="the plot (default: sweep.png)")
    _add_eval_options(p, preset_default=None, anchors=False, steps_help=None)
    _add_tracking_options(p)
    p.add_argument("--no-tracking", action="store_true", help="do not log to MLflow (default: log)")
    p.set_defaults(func=_cmd_sweep, arch=None, steps=None)

    p = _subcommand(
        sub, "report", "plots and an HTML page of a tracked search",
        "Read a search from MLflow and write PNG plots (progress against random search, Pareto fronts, "
        "rejections and failures, the lineage of the top layers, the top layers' graphs) and report.html, one "
        "self-contained page with the images embedded, also logged to the run (MLflow's artifact viewer shows "
        "it).",
        ("evonorm report latest", "evonorm report 3f2a9c... --top 20 --out reports/paper-run",
         "evonorm report latest --tracking-uri http://host:5000 --no-upload"))
    p.add_argument("run", metavar="RUN_ID", help="the search's MLflow parent run id, or 'latest'")
    p.add_argument("--out", metavar="DIR", help="output directory (default: reports/RUNID, the run id's first 8 "
                                                "characters)")
    p.add_argument("--top", type=int, default=10, metavar="N",
                   help="layers to list, draw and trace back (default: 10)")
    p.add_argument("--no-upload", action="store_true", help="do not log the report to the run (default: log it)")
    _add_tracking_options(p)
    p.set_defaults(func=_cmd_report)

    p = _subcommand(
        sub, "rerank", "train a search's top layers longer, with several seeds, next to BN-ReLU",
        "Re-rank the top layers of a search (tracked, or a search directory) as the paper did before naming "
        "EvoNorm: train each (and BN-ReLU) on every anchor with several seeds, without the quality and budget "
        "rejections, and log the table to MLflow. The test split is used only with --split test (then training "
        "uses the whole training split).",
        (f"evonorm rerank latest --top 5 --steps 1000 {OFFLINE}",
         f"evonorm rerank 3f2a9c... --preset paper --seeds 5 --split test {OFFLINE}",
         f"evonorm rerank latest --preset tiny --beside bn_relu evonorm_s0 gn_relu {OFFLINE}",
         f"evonorm rerank runs/figure10/evolution-s0 --preset tiny_plain --steps 600 --seeds 2 {OFFLINE}",
         f"evonorm rerank latest --top 0 --preset tiny_plain --beside bn_relu 'tanh(x)' "
         f"'max(add(x, neg(mean_batch(x))), zero)' {OFFLINE}"))
    p.add_argument("run", metavar="RUN_ID", help="the search's MLflow parent run id, 'latest', or the search's "
                                                  "directory (its event log is read; no tracked search is needed)")
    p.add_argument("--top", type=int, default=10, metavar="N",
                   help="layers to re-rank (default: 10; 0: only the --beside layers)")
    p.add_argument("--seeds", type=int, default=3, metavar="S", help="seeds per layer and anchor (default: 3)")
    p.add_argument("--split", choices=["val", "test"], default="val", help="score on (default: val)")
    p.add_argument("--beside", nargs="+", default=["bn_relu"], metavar="LAYER",
                   help="layers trained beside them: zoo names, genome text, expressions, RUN_ID:RANK or "
                        "DIR:RANK, e.g. bn_relu evonorm_s0 'tanh(x)' (default: bn_relu)")
    _add_eval_options(p, preset_default=None)
    _add_tracking_options(p)
    p.set_defaults(func=_cmd_rerank)
    return parser


def _add_tracking_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracking-uri", metavar="URI",
                   help="MLflow tracking URI, e.g. http://host:5000 (default: $MLFLOW_TRACKING_URI, else "
                        "MLflow's own, sqlite:///mlflow.db in the working directory)")
    p.add_argument("--experiment", default="evonorm", metavar="NAME", help="MLflow experiment (default: evonorm)")


def _add_eval_options(p: argparse.ArgumentParser, preset_default: str | None = "cpu", anchors: bool = True,
                      steps_help: str | None = "training steps per anchor") -> None:
    p.add_argument("--preset", default=preset_default, metavar="NAME",
                   help="configs/NAME.toml: smoke (seconds, for tests), cpu (2-core CPU, ~2 min a layer), "
                        "fast (CPU searches; rejections take seconds), tiny (CPU searches that admit the paper's "
                        "layers: one anchor, 16-pixel images, ~30 s a layer), tiny_lr02 (tiny at lr 0.2: "
                        "ranks layers as cpu does, Spearman 0.82), tiny_plain (tiny_lr02 on a chain without shortcuts, "
                        "which fails layers that do not normalize: Spearman 0.84, 10-15 s a layer), paper (GPU, the "
                        "paper's widths); "
                        "default: cpu")
    p.add_argument("--config", metavar="FILE", help="a TOML config file (instead of --preset; default: none)")
    if anchors:
        p.add_argument("--arch", nargs="+", metavar="NAME",
                       help="anchors to use: resnet50, mobilenetv2, efficientnet_b0, plain (not the paper's: a "
                            "chain without shortcuts) (default: the preset's)")
    if steps_help:
        p.add_argument("--steps", type=int, metavar="N",
                       help=f"{steps_help} (default: the preset's: smoke 8, fast 50, tiny, tiny_lr02 and tiny_plain "
                            "200, cpu 100, paper 2000)")
    p.add_argument("--data", metavar="PATH",
                   help="cifar10 or cifar100, which torchvision downloads into the cache ($EVONORM_CACHE, else "
                        "$XDG_CACHE_HOME/evonorm or ~/.cache/evonorm), or an ImageFolder directory with train/ "
                        "and test/, e.g. ../shared/data/cifar10 (default: the preset's, cifar10, a download: it "
                        "fails offline, so give a local copy there)")
    p.add_argument("--device", metavar="DEVICE",
                   help="cpu, cuda or cuda:N (default: the preset's: cpu for cpu, fast and the tiny ones, auto "
                        "(cuda when there is one) for smoke and paper)")
    p.add_argument("--seed", type=int, metavar="S",
                   help="seed for initialisation and batch order (default: the preset's, 0)")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # output piped into `head`
        return 0
    except KeyboardInterrupt:
        print(f"evonorm {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, KeyError, FileNotFoundError, FileExistsError, RuntimeError) as exc:
        # errors a user can cause: one line, no traceback
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"evonorm {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
