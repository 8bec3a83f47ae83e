"""Candidates evaluated per hour on a fixed mix of layers, for each way the candidate layer can
run, measured side by side in one run.

    python benchmarks/candidates_per_hour.py --data ../shared/data/cifar10 [--preset fast]
        [--forms interpreted,eager,survivors,always] [--random 5] [--seed 0] [--threads N]

The mix: BN-ReLU, EvoNorm-B0 and EvoNorm-S0, ``--random`` random graphs of the paper's
generator that read x, and ``--mutants`` children of the three zoo layers (seeded: the same mix
every run). Each is evaluated in full by the
preset's evaluator, with its rejection checks, once per form:

- ``interpreted``: the op-by-op layer networks used before code generation
  (:class:`gp.interpreter.InterpretedLayer`), the "before" of issue 9 (``before_after.py``
  runs the evaluator of that time itself);
- ``eager``: today's generated code (``train.compile = "off"``);
- ``fail-first``: as ``eager``, with the anchors' quality stages in the fail-first order
  (``rejection.anchor_order = "fail-first"``) instead of as listed;
- ``survivors`` / ``always``: ``torch.compile`` of the generated code after the quality stage /
  before it (compile time included), training mode only, validation eager;
- ``always-eval``: as ``always``, with validation compiled too (``gp.compiler.COMPILE_EVAL``,
  the default);
- ``always-dynamic``: as ``always-eval``, with every size dynamic (``train.compile_shapes =
  "dynamic"``: one graph per genome and mode) instead of one graph per resolution.

Forms are interleaved layer by layer, in reverse order every other layer: drift on a shared
machine hits all of them alike, and the compiled kernels that gcc leaves in the on-disk cache
(which a later form of the same layer can reuse) favour no form in particular. It
prints each evaluation's seconds and status, the candidates per hour of each form over the whole
mix, its ratio to ``interpreted`` and to ``eager``, and where a form's verdict differs from
eager's (compiled code and the interpreter round differently, so a layer at a threshold can
flip). ``--no-quality`` makes it a like-for-like speed comparison.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import evaluation.evaluate as evaluate_module  # noqa: E402
from evaluation import config as cfgmod  # noqa: E402
from evaluation.evaluate import Evaluator  # noqa: E402
from gp import Affine, compiler, layer_factory, zoo  # noqa: E402
from gp.checks import static_problem  # noqa: E402
from gp.genome import Genome  # noqa: E402
from gp.interpreter import InterpretedLayer  # noqa: E402
from gp.space import SearchSpace  # noqa: E402
from gp.variation import mutate, pad, random_genome  # noqa: E402

FORMS = ("interpreted", "eager", "fail-first", "survivors", "always", "always-eval", "always-dynamic")


def interpreted_factory(genome: Genome, *, no_act: str = "affine"):
    """``gp.layer_factory`` with the interpreter in place of the generated layer."""
    generated = layer_factory(genome, no_act=no_act)

    def factory(num_features: int, *, apply_act: bool = True, device=None, dtype=None):
        layer = generated(num_features, apply_act=apply_act, device=device, dtype=dtype)
        if isinstance(layer, Affine | torch.nn.BatchNorm2d):
            return layer
        return InterpretedLayer(genome, num_features, device=device, dtype=dtype)

    return factory


def cold() -> None:
    """Forget every compiled program, in memory and on disk, so that each form compiles a layer
    as a new candidate does (a search never meets the same graph twice): without this, a form
    would reuse what an earlier form compiled for the same genome."""
    compiler.program.cache_clear()
    torch._dynamo.reset()


@contextlib.contextmanager
def form_of(name: str):
    """Evaluations inside run the candidate (and the BN-ReLU yardstick) in form ``name``."""
    cold()
    if name in ("survivors", "always"):
        compiler.COMPILE_EVAL = False
        try:
            yield
        finally:
            compiler.COMPILE_EVAL = True
        return
    if name != "interpreted":
        yield
        return
    saved = evaluate_module.layer_factory
    evaluate_module.layer_factory = interpreted_factory
    try:
        yield
    finally:
        evaluate_module.layer_factory = saved


ZOO_MIX = ("bn_relu", "evonorm_b0", "evonorm_s0")


def mix(n_random: int, seed: int, n_mutants: int = 0) -> list[tuple[str, Genome]]:
    """The zoo layers, ``n_random`` random graphs that read x, then ``n_mutants`` children of the
    zoo layers in turn, made as evolution makes them (indel steps, repeated with probability 1/2)
    and kept only if they pass the static probe, as evolution's screened proposals do: the layers a
    search evaluates once it has found good ones."""
    rng = np.random.default_rng(seed)
    layers = [(name, zoo.get(name)) for name in ZOO_MIX]
    space = SearchSpace()
    while len(layers) < 3 + n_random:
        genome = random_genome(rng, space)
        if genome.reads_x:
            layers.append((f"random{len(layers) - 3}", genome))
    made = 0
    while made < n_mutants:
        name = ZOO_MIX[made % len(ZOO_MIX)]
        parent = pad(zoo.get(name), space.max_nodes, rng, space)
        child = mutate(parent, rng, space, step="indel", repeat=0.5)
        if child.key != zoo.get(name).key and not static_problem(child):
            layers.append((f"{name.removeprefix('evonorm_')}-mut{made}", child))
            made += 1
    return layers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="cifar10", help="data source (offline: ../shared/data/cifar10)")
    ap.add_argument("--preset", default="fast", help="evaluation preset (default %(default)s)")
    ap.add_argument("--forms", default=",".join(FORMS), help="forms to compare (default %(default)s)")
    ap.add_argument("--random", type=int, default=5, help="random graphs in the mix (default %(default)s)")
    ap.add_argument("--mutants", type=int, default=0,
                    help="children of the zoo layers added to the mix, as a search makes them (default %(default)s)")
    ap.add_argument("--seed", type=int, default=0, help="seeds the random graphs and mutants (default %(default)s)")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    ap.add_argument("--no-quality", action="store_true",
                    help="turn the quality check off, so every form trains every layer that is not rejected earlier: "
                         "a pure speed comparison (with it on, forms that round differently can be rejected on "
                         "different anchors and do different amounts of work)")
    args = ap.parse_args()
    forms = args.forms.split(",")
    unknown = [f for f in forms if f not in FORMS]
    if unknown:
        ap.error(f"unknown form(s) {', '.join(unknown)}; valid: {', '.join(FORMS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch._inductor.config.fx_graph_cache = False  # no compiled code from earlier runs (see cold())
    torch._functorch.config.enable_autograd_cache = False
    base = cfgmod.override(cfgmod.load(args.preset), **{"data.source": args.data})
    if args.no_quality:
        base = cfgmod.override(base, **{"rejection.quality_threshold": 0.0})
    data = Evaluator(base).data
    policy = {"interpreted": "off", "eager": "off", "fail-first": "off", "survivors": "survivors",
              "always": "always", "always-eval": "always", "always-dynamic": "always"}
    settings = {f: {"train.compile": policy[f]} for f in forms}
    if "fail-first" in settings:
        settings["fail-first"]["rejection.anchor_order"] = "fail-first"
    if "always-dynamic" in settings:
        settings["always-dynamic"]["train.compile_shapes"] = "dynamic"
    evaluators = {f: Evaluator(cfgmod.override(base, **settings[f]), data=data) for f in forms}
    layers = mix(args.random, args.seed, args.mutants)
    seconds = {f: 0.0 for f in forms}
    verdicts: dict[str, dict[str, str]] = {f: {} for f in forms}
    print(f"preset {args.preset}{' without the quality check' if args.no_quality else ''}, {len(layers)} layers, "
          f"threads {torch.get_num_threads()}", flush=True)
    for i, (name, genome) in enumerate(layers):
        for f in forms if i % 2 == 0 else forms[::-1]:
            with form_of(f):
                start = time.perf_counter()
                result = evaluators[f](genome)
                took = time.perf_counter() - start
            seconds[f] += took
            verdict = result.status if result.stage is None else f"{result.status} ({result.stage})"
            verdicts[f][name] = verdict
            where = f" on {result.anchor}, step {result.step}" if result.anchor else ""
            print(f"  {name:<11} {f:<12} {took:7.1f} s  {verdict}{where}", flush=True)
    print(f"\n{'form':<12} {'seconds':>8} {'cand/hour':>10} {'vs interp':>10} {'vs eager':>9}")
    for f in forms:
        rate = 3600 * len(layers) / seconds[f]
        vs_i = f"{seconds['interpreted'] / seconds[f]:.2f}x" if "interpreted" in forms else "-"
        vs_e = f"{seconds['eager'] / seconds[f]:.2f}x" if "eager" in forms else "-"
        print(f"{f:<12} {seconds[f]:8.1f} {rate:10.1f} {vs_i:>10} {vs_e:>9}")
    if "eager" in forms:
        for f in forms:
            diff = [n for n, _ in layers if verdicts[f][n] != verdicts["eager"][n]]
            if diff:
                print(f"{f}: verdict differs from eager's on {', '.join(diff)}")
    if base.rejection.max_step_ratio > 0:
        print("(the preset has a step-time budget: each form's first evaluation includes timing BN-ReLU once)")


if __name__ == "__main__":
    main()
