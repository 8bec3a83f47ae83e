"""Candidates per hour on a fixed mix: today's evaluator against an earlier commit's, side by side
in one run (issue 9's "before and after").

    python benchmarks/before_after.py --data ../shared/data/cifar10 --preset cpu [--before 58f4f12]
        [--random 5] [--seed 0] [--threads 2]

``--before`` (default :data:`BEFORE`, the last commit before issue 9's first change) is checked
out into a temporary git worktree. One worker process runs on each tree, with that tree's own
code and its own ``Evaluator`` for the preset (the preset must exist in both). Each layer of
``candidates_per_hour.py``'s mix (BN-ReLU, EvoNorm-B0, EvoNorm-S0 and ``--random`` seeded random
graphs that read x) is sent to both workers in turn, one at a time, and which goes first
alternates layer by layer, so drift on a shared machine hits both alike. Each worker times its
own evaluations; loading the data happens before the first layer and is not counted. Prints each
evaluation's seconds and verdict, the totals, candidates per hour and their ratio.

The two evaluators do what their code did: the earlier one may train a layer further before
rejecting it (no staged evaluation), and both run every check of the preset. Verdicts that differ
are listed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from candidates_per_hour import mix  # noqa: E402

BEFORE = "58f4f12"
"""The last commit before issue 9's first change (b038f64, staged evaluation): the evaluator as the
issue measured it."""

WORKER = r"""
import json, sys, time
import torch
torch.set_num_threads(int(sys.argv[3]))
import evaluation
from evaluation import config as cfgmod
from evaluation.evaluate import Evaluator
from gp import Genome
cfg = cfgmod.override(cfgmod.load(sys.argv[1]), **{"data.source": sys.argv[2]})
ev = Evaluator(cfg)
ev.data  # loaded before the first layer, not timed
print("@@ " + json.dumps({"ready": evaluation.__file__}), flush=True)
for line in sys.stdin:
    genome = Genome.parse(line.strip())
    start = time.perf_counter()
    result = ev(genome)
    took = time.perf_counter() - start
    status = getattr(result.status, "value", result.status)
    print("@@ " + json.dumps({"seconds": took, "status": status, "stage": result.stage,
                              "anchor": result.anchor}), flush=True)
"""


class Worker:
    """One evaluator process on one source tree, fed genome texts on stdin."""

    def __init__(self, name: str, tree: Path, preset: str, data: str, threads: int) -> None:
        self.name = name
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER, preset, data, str(threads)], cwd=tree,
                                     env={**os.environ, "PYTHONPATH": str(tree)}, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        ready = self._read()
        where = Path(ready["ready"]).resolve()
        if not where.is_relative_to(tree.resolve()):
            raise SystemExit(f"the {name} worker imported evaluation from {where}, not from {tree}")

    def _read(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith("@@ "):
                return json.loads(line[3:])
        raise SystemExit(f"the {self.name} worker stopped (exit code {self.proc.wait()}); see its messages above")

    def evaluate(self, genome_text: str) -> dict:
        self.proc.stdin.write(genome_text + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="cifar10", help="data source (offline: ../shared/data/cifar10)")
    ap.add_argument("--preset", default="cpu", help="evaluation preset, present in both trees (default %(default)s)")
    ap.add_argument("--before", default=BEFORE, help="the earlier commit (default %(default)s)")
    ap.add_argument("--random", type=int, default=5, help="random graphs in the mix (default %(default)s)")
    ap.add_argument("--seed", type=int, default=0, help="seeds the random graphs (default %(default)s)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads per worker (default %(default)s)")
    args = ap.parse_args()
    repo = Path(__file__).resolve().parent.parent
    data = str(Path(args.data).resolve()) if Path(args.data).exists() else args.data
    with tempfile.TemporaryDirectory(prefix="evonorm-before-") as tmp:
        tree = Path(tmp) / "tree"
        made = subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(tree), args.before],
                              capture_output=True, text=True)
        if made.returncode:
            raise SystemExit(f"cannot check out {args.before!r}: {made.stderr.strip()}")
        try:
            run(args, repo, tree, data)
        finally:
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)], capture_output=True)


def run(args, repo: Path, tree: Path, data: str) -> None:
    started = time.perf_counter()
    workers = {"before": Worker("before", tree, args.preset, data, args.threads),
               "after": Worker("after", repo, args.preset, data, args.threads)}
    print(f"preset {args.preset}, before = {args.before}, after = the working tree; threads {args.threads}; "
          f"workers ready in {time.perf_counter() - started:.0f} s", flush=True)
    layers = mix(args.random, args.seed)
    seconds = {name: 0.0 for name in workers}
    verdicts: dict[str, dict[str, str]] = {name: {} for name in workers}
    for i, (label, genome) in enumerate(layers):
        for name in ("before", "after") if i % 2 == 0 else ("after", "before"):
            out = workers[name].evaluate(str(genome))
            seconds[name] += out["seconds"]
            verdict = out["status"] if out["stage"] is None else f"{out['status']} ({out['stage']})"
            verdicts[name][label] = verdict
            where = f" on {out['anchor']}" if out["anchor"] else ""
            print(f"  {label:<11} {name:<7} {out['seconds']:7.1f} s  {verdict}{where}", flush=True)
    for w in workers.values():
        w.close()
    print(f"\n{'code':<8} {'seconds':>8} {'cand/hour':>10}")
    for name in workers:
        print(f"{name:<8} {seconds[name]:8.1f} {3600 * len(layers) / seconds[name]:10.1f}")
    print(f"after / before, candidates per hour: {seconds['before'] / seconds['after']:.2f}x")
    differ = [label for label in verdicts["after"] if verdicts["after"][label] != verdicts["before"][label]]
    for label in differ:
        print(f"verdicts differ on {label}: before {verdicts['before'][label]}, after {verdicts['after'][label]}")


if __name__ == "__main__":
    main()
