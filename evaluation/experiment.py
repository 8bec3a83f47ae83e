"""A search on disk: its configs, searcher state and checkpoint, written atomically after every
change, so ``kill -9`` at any moment loses no finished evaluation and ``resume`` continues with
the same window, RNG state and remaining budget."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections import Counter
from pathlib import Path

from evaluation import config as cfgmod
from evaluation.config import ConfigError, EvalConfig, SearchConfig
from evaluation.progress import ProgressLine
from gp import formula
from gp.genome import Genome
from gp.search import Evolution, RandomSearch, Record, Searcher, run_search
from gp.space import SearchSpace

CHECKPOINT = "checkpoint.json"
ALGORITHMS = ("evolution", "random")


def make_searcher(cfg: SearchConfig) -> Searcher:
    space = SearchSpace(batch_stats=cfg.batch_stats, max_nodes=cfg.max_nodes)
    if cfg.algorithm == "evolution":
        return Evolution(cfg.population_size, cfg.tournament_size, cfg.criterion, seed_layers=cfg.seed_layers,
                         mutation=cfg.mutation, window_rejected=cfg.window_rejected, seed=cfg.seed, space=space)
    if cfg.algorithm == "random":
        return RandomSearch(seed=cfg.seed, space=space)
    raise ConfigError(f"unknown algorithm {cfg.algorithm!r}; valid: {', '.join(ALGORITHMS)}")


class Experiment:
    """One search's directory: ``checkpoint.json`` holds everything needed to resume."""

    def __init__(self, out: Path, eval_cfg: EvalConfig, search_cfg: SearchConfig, searcher: Searcher,
                 run_id: str | None = None) -> None:
        self.out, self.eval_cfg, self.search_cfg, self.searcher = Path(out), eval_cfg, search_cfg, searcher
        self.run_id = run_id  # the MLflow parent run, once tracked

    @classmethod
    def create(cls, out: Path, eval_cfg: EvalConfig, search_cfg: SearchConfig) -> Experiment:
        out = Path(out)
        if (out / CHECKPOINT).exists():
            raise FileExistsError(f"{out} already holds a search; continue it with --resume {out} or pick "
                                  "another --out")
        out.mkdir(parents=True, exist_ok=True)
        exp = cls(out, eval_cfg, search_cfg, make_searcher(search_cfg))
        exp.save()
        return exp

    @classmethod
    def resume(cls, out: Path) -> Experiment:
        path = Path(out) / CHECKPOINT
        if not path.exists():
            raise FileNotFoundError(f"no search to resume in {out}: {path} does not exist")
        blob = json.loads(path.read_text())
        search_cfg = cfgmod.search_from_dict(blob["search"])
        return cls(Path(out), cfgmod.from_dict(blob["eval"]), search_cfg, Searcher.from_state(blob["searcher"]),
                   blob.get("run_id"))

    @classmethod
    def from_tracking(cls, tracker, run_id: str, out: Path) -> Experiment:
        """Rebuild a search from its tracked parent run and child runs (no checkpoint needed)."""
        from evaluation.tracking import config_of

        config = config_of(tracker.search_run(run_id))
        eval_cfg = cfgmod.from_dict(config["eval"])
        search_cfg = cfgmod.search_from_dict(config["search"])
        template = make_searcher(search_cfg).state()
        searcher = Searcher.from_history(template["kind"], template["params"], search_cfg.seed, template["space"],
                                         tracker.history(run_id))
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        exp = cls(out, eval_cfg, search_cfg, searcher, run_id)
        exp.save()
        return exp

    def config(self) -> dict:
        return {"eval": cfgmod.to_dict(self.eval_cfg), "search": cfgmod.to_dict(self.search_cfg)}

    def save(self) -> None:
        """Write the checkpoint atomically: a reader or a kill sees the old file or the new one."""
        blob = {"version": 1, "saved": time.time(), "run_id": self.run_id, **self.config(),
                "searcher": self.searcher.state()}
        tmp = self.out / f".{CHECKPOINT}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump(blob, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.out / CHECKPOINT)

    def with_budget(self, budget: int) -> Experiment:
        self.search_cfg = dataclasses.replace(self.search_cfg, budget=budget)
        return self

    def run(self, executor, *, on_record=None, tracker=None) -> list[Record]:
        """Run to the budget; with a tracker, every candidate becomes a child run of the search's
        parent run (opened here, or re-opened on resume)."""
        if tracker is None:
            return run_search(self.searcher, executor, self.search_cfg.budget, on_record=on_record, save=self.save)
        self.run_id = tracker.start_search(self.out.name, self.config(), algorithm=self.search_cfg.algorithm,
                                           run_id=self.run_id)
        self.save()

        def track(record: Record, result, searcher: Searcher, in_flight: int) -> None:
            tracker.log_candidate(record, result, self.anchors)
            tracker.log_progress(searcher.history, self.anchors)
            if on_record is not None:
                on_record(record, result, searcher, in_flight)

        ok = False
        try:
            history = run_search(self.searcher, executor, self.search_cfg.budget, on_record=track, save=self.save)
            ok = True
            return history
        finally:
            tracker.finish(ok)

    @property
    def anchors(self) -> list[str]:
        return [a.arch for a in self.eval_cfg.anchors]


class SearchDisplay:
    """Live line: done and in flight, rejections by stage, duplicates, best score per anchor."""

    def __init__(self, anchors: list[str], budget: int, line: ProgressLine | None = None) -> None:
        self.anchors, self.budget = anchors, budget
        self.line = line or ProgressLine()

    def __call__(self, record: Record, result, searcher: Searcher, in_flight: int) -> None:
        self.line.show(self.text(searcher, in_flight), force=record.status == "ok")

    def text(self, searcher: Searcher, in_flight: int) -> str:
        hist = searcher.history
        stages = Counter(r.stage for r in hist if r.status == "rejected")
        failed = sum(1 for r in hist if r.status == "failed")
        best = [max((r.objectives[k] for r in hist if r.objectives is not None), default=None)
                for k in range(len(self.anchors))]
        best_text = " ".join(f"{a} {b:.3f}" if b is not None else f"{a} -" for a, b in zip(self.anchors, best,
                                                                                           strict=True))
        rej = ", ".join(f"{s} {n}" for s, n in stages.most_common()) or "none"
        return (f"done {searcher.evaluated}/{self.budget}  in flight {in_flight}  rejected: {rej}  "
                f"failed {failed}  duplicates {searcher.duplicates}  best: {best_text}")


def run_live(exp: Experiment, executor, tracker=None) -> list[Record]:
    """Run a search with the live display, closing the executor whatever happens."""
    display = SearchDisplay(exp.anchors, exp.search_cfg.budget)
    try:
        return exp.run(executor, on_record=display, tracker=tracker)
    finally:
        display.line.done()
        executor.close()


def summary(exp: Experiment, top: int = 5) -> str:
    hist = exp.searcher.history
    counts = Counter(r.status for r in hist)
    lines = [f"search in {exp.out}: {exp.searcher.evaluated} evaluated, "
             + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
             + f"; {exp.searcher.duplicates} duplicate proposals answered from the cache"]
    best = exp.searcher.best(top)
    if not best:
        lines.append("no layer passed every check")
        return "\n".join(lines)
    head = f"{'#':>3} {'mean':>6} " + " ".join(f"{a[:12]:>12}" for a in exp.anchors) + "  formula"
    lines += ["", f"top layer{'s' * (len(best) > 1)} by mean accuracy:", head]
    for r in best:
        scores = " ".join(f"{v:>12.3f}" for v in r.objectives)
        lines.append(f"{r.ordinal:>3} {r.mean:>6.3f} {scores}  {formula(Genome.parse(r.genome))}")
    return "\n".join(lines)
