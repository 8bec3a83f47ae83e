"""The stability test's time on every anchor of a preset: this tree's test against another
revision's, side by side in one process.

    python benchmarks/stability_time.py [--preset cpu] [--before HEAD~1] [--layers bn_relu,evonorm_b0]
                                        [--rounds 4] [--threads 2]

The other revision's ``evaluation/hooks.py`` is read with ``git show`` and loaded as a module
beside this tree's, so both tests run on the same model, batch and thread count; rounds
alternate between them. Prints per layer and anchor the median seconds of each (the first round
is a warm-up and is dropped) and before / after. The verdicts must agree; a difference is printed.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from evaluation import config as cfgmod
from evaluation import hooks as after_hooks
from evaluation.train import build_model
from gp import layer_factory, zoo

ROOT = Path(__file__).resolve().parent.parent


def load_hooks(revision: str, folder: Path):
    """``evaluation/hooks.py`` as it was at ``revision``, as a module named ``hooks_before``."""
    try:
        text = subprocess.run(["git", "show", f"{revision}:evaluation/hooks.py"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout
    except subprocess.CalledProcessError as e:
        raise SystemExit(f"cannot read evaluation/hooks.py at revision {revision!r}: {e.stderr.strip()}") from e
    path = folder / "hooks_before.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("hooks_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["hooks_before"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def run_once(module, rejection, ctx) -> tuple[float, str]:
    test = module.Stability(rejection.stability_steps, rejection.stability_threshold, rejection.stability_lr)
    start = time.perf_counter()
    try:
        test.before_training(ctx)
        verdict = "passed"
    except Exception as e:  # noqa: BLE001 - each revision raises its own CandidateRejected class
        verdict = f"rejected: {getattr(e, 'reason', e)}"
    return time.perf_counter() - start, verdict


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="cpu", help="anchors, widths and rejection settings (default: cpu)")
    parser.add_argument("--before", default="HEAD~1", help="revision to compare with (default: HEAD~1)")
    parser.add_argument("--layers", default="bn_relu,evonorm_b0,evonorm_s0", help="zoo layers")
    parser.add_argument("--rounds", type=int, default=4, help="rounds per layer and anchor, the first dropped")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.rounds < 2:
        parser.error(f"--rounds must be at least 2 (the first is a warm-up), got {args.rounds}")
    names = [n for n in args.layers.split(",") if n]
    for name in names:
        zoo.get(name)  # an unknown name fails here, before any timing
    torch.set_num_threads(args.threads)
    cfg = cfgmod.load(args.preset)
    rejection, device = cfg.rejection, torch.device("cpu")
    gen = torch.Generator().manual_seed(0)
    n = rejection.stability_batch
    batch = torch.randn(n, 3, 32, 32, generator=gen), torch.randint(0, 10, (n,), generator=gen)
    print(f"preset {args.preset}: {rejection.stability_steps} ascent steps, batch {n}; before = {args.before}, "
          f"after = the working tree; {args.threads} threads, {args.rounds} rounds", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        before_hooks = load_hooks(args.before, Path(folder))
        totals = {"before": 0.0, "after": 0.0}
        for name in names:
            genome = zoo.get(name)
            for index, anchor in enumerate(cfg.anchors):
                model = build_model(anchor, layer_factory(genome), device, cfg.seed + index)
                ctx = after_hooks.TrialContext(genome, anchor.arch, model, device, batch)
                times, verdicts = {"before": [], "after": []}, {}
                for _ in range(args.rounds):
                    for label, module in (("before", before_hooks), ("after", after_hooks)):
                        seconds, verdicts[label] = run_once(module, rejection, ctx)
                        times[label].append(seconds)
                b, a = (statistics.median(times[k][1:]) for k in ("before", "after"))
                totals["before"] += b
                totals["after"] += a
                note = "" if verdicts["before"] == verdicts["after"] else \
                    f"  VERDICTS DIFFER: before {verdicts['before']}, after {verdicts['after']}"
                print(f"{name:12s} {anchor.arch:16s} before {b:6.3f} s  after {a:6.3f} s  "
                      f"before/after {b / a:.2f}x  {verdicts['after']}{note}", flush=True)
        print(f"all: before {totals['before']:.2f} s, after {totals['after']:.2f} s, "
              f"before/after {totals['before'] / totals['after']:.2f}x")


if __name__ == "__main__":
    main()
