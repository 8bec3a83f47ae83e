"""Does a cheap proxy rank layers as a dearer one does? Scores a fixed set of layers — the zoo,
random layers that pass the static probe, and mutants of good layers — under two presets, and
prints the Spearman rank correlation of their mean accuracies and the cost of each preset.

    python scripts/proxy_agreement.py --data ../shared/data/cifar10 --cheap fast --reference cpu

The quality rejection is switched off in both presets, so that every layer that trains gets a
score; a layer rejected otherwise (static probe, stability, non-finite loss) scores chance (0.1).
Results are appended to ``--out`` (JSON lines) as they come; a rerun skips layers already scored.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from evaluation import config as cfgmod
from evaluation.evaluate import Evaluator
from gp import Genome, mutate, probe, random_genome, zoo

CHANCE = 0.1


def layer_set(count_random: int = 7, count_mutants: int = 6, seed: int = 2024) -> dict[str, Genome]:
    """Zoo layers, random survivors of the static probe, mutants (that pass it) of good layers."""
    layers = {name: zoo.get(name) for name in zoo.names()}
    rng = np.random.default_rng(seed)
    while sum(n.startswith("random") for n in layers) < count_random:
        g = random_genome(rng)
        if probe(g).problem is None and g.key not in {x.key for x in layers.values()}:
            layers[f"random{sum(n.startswith('random') for n in layers)}"] = g.canonical
    parents = ["bn_relu", "evonorm_b0", "evonorm_s0"]
    while sum(n.startswith("mutant") for n in layers) < count_mutants:
        parent = parents[sum(n.startswith("mutant") for n in layers) % len(parents)]
        g = mutate(zoo.get(parent), rng)
        if probe(g).problem is None and g.key not in {x.key for x in layers.values()}:
            layers[f"mutant{sum(n.startswith('mutant') for n in layers)}_{parent}"] = g.canonical
    # interleave the three kinds, so that a run cut short still ranks a mix
    groups = [[n for n in layers if n.startswith(k)] for k in ("random", "mutant")]
    groups.insert(0, [n for n in layers if not n.startswith(("random", "mutant"))])
    order = [g[i] for i in range(max(map(len, groups))) for g in groups if i < len(g)]
    return {n: layers[n] for n in order}


def score(result) -> float:
    return float(np.mean(list(result.accuracies.values()))) if result.objectives is not None else CHANCE


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="cifar10", help="data source (offline: ../shared/data/cifar10)")
    ap.add_argument("--cheap", default="fast", help="the preset under test")
    ap.add_argument("--reference", default="cpu", help="the preset it should agree with")
    ap.add_argument("--out", default="runs/proxy_agreement.jsonl")
    ap.add_argument("--only", default=None, help="score only this preset (to run the two separately)")
    args = ap.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    if out.exists():
        for line in out.read_text().splitlines():
            d = json.loads(line)
            done[(d["preset"], d["layer"])] = d
    layers = layer_set()
    presets = [args.only] if args.only else [args.cheap, args.reference]
    evaluators = {}
    for preset in presets:
        cfg = cfgmod.override(cfgmod.load(preset), **{"data.source": args.data, "rejection.quality_threshold": 0.0})
        same = [e for e in evaluators.values() if e.config.data == cfg.data]  # share the images only when cut alike
        evaluators[preset] = Evaluator(cfg, data=same[0].data if same else None)
    for name, genome in layers.items():  # layer by layer, so a cut-short run still pairs its scores
        for preset, evaluator in evaluators.items():
            if (preset, name) in done:
                continue
            result = evaluator(genome)
            d = {"preset": preset, "layer": name, "genome": str(genome), "status": str(result.status),
                 "stage": result.stage, "score": score(result), "accuracies": result.accuracies,
                 "seconds": round(sum(result.timings.values()), 2)}
            done[(preset, name)] = d
            with out.open("a") as f:
                f.write(json.dumps(d) + "\n")
            print(f"{preset:>6} {name:<24} {d['status']:<9} score {d['score']:.3f}  {d['seconds']:7.1f} s", flush=True)
    common = [n for n in layers if (args.cheap, n) in done and (args.reference, n) in done]
    if len(common) >= 3:
        a = [done[(args.cheap, n)]["score"] for n in common]
        b = [done[(args.reference, n)]["score"] for n in common]
        rho, p = spearmanr(a, b)
        cost = [sum(done[(pr, n)]["seconds"] for n in common) for pr in (args.cheap, args.reference)]
        print(f"\n{len(common)} layers: Spearman {rho:.3f} (p = {p:.2g}); "
              f"seconds {args.cheap} {cost[0]:.0f}, {args.reference} {cost[1]:.0f} (ratio {cost[0] / cost[1]:.2f})")


if __name__ == "__main__":
    main()
