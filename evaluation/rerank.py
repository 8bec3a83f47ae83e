"""Re-ranking: the paper trained its top layers longer before naming EvoNorm-B0 and S0.

Each of the top layers of a search, and BN-ReLU (or other layers) beside them, is trained on
every anchor with several seeds under a (longer) config, without the quality and budget
rejections; the table of mean accuracies is logged to MLflow as a run of its own, linked to the
search. The search is a tracked run (an MLflow run id, or ``latest``) or a search directory, whose
event log is read directly (then the re-ranking's run is tagged with the directory instead).
"""

from __future__ import annotations

import dataclasses
import statistics
from pathlib import Path

from evaluation import config as cfgmod
from evaluation.config import EvalConfig
from evaluation.evaluate import Evaluator, load_data, resolve_device
from evaluation.hooks import FiniteLoss
from evaluation.layers import logged_history, resolve
from evaluation.tracking import Tracker
from gp import Genome, formula
from gp.search import ranked


@dataclasses.dataclass(frozen=True)
class Row:
    name: str
    genome: str
    scores: dict[str, list[float]]  # anchor -> accuracy per seed (NaN where the layer did not train)

    @property
    def mean(self) -> float:
        return statistics.mean(statistics.mean(v) for v in self.scores.values())


def rerank(tracker: Tracker, run: str, config: EvalConfig, *, top: int = 10, seeds: int = 3,
           split: str = "val", references: tuple[str, ...] = ("bn_relu",), progress=None) -> tuple[list[Row], str]:
    """Train the top ``top`` layers of the search ``run`` (a tracked run id, ``latest``, or a search
    directory) beside the layers ``references`` (default BN-ReLU; any spec that
    :func:`evaluation.layers.resolve` reads: a zoo name, genome text, an expression, RUN_ID:RANK or
    DIR:RANK; ``top=0``: only them); returns the rows (best first) and the re-ranking's run id."""
    if split not in ("val", "test"):
        raise ValueError(f"split must be 'val' or 'test', got {split!r}")
    if top < 0:
        raise ValueError(f"top must be 0 or more, got {top}")
    # a bad spec fails here, before any training
    known = [resolve(spec, tracker=tracker) for spec in dict.fromkeys(references)]
    if Path(run).is_dir():  # a search directory (logged_history names one that is not)
        run_id, source, history = None, str(Path(run).resolve()), logged_history(run)
    else:
        run_id = source = tracker.resolve(run)
        history = tracker.history(run_id)
    best = ranked(history)[:top]
    if not best and top:
        raise ValueError(f"search {source} has no layer that passed every check; nothing to re-rank")
    layers = known + [(f"candidate {r.ordinal}", Genome.parse(r.genome)) for r in best]
    data = load_data(config, resolve_device(config.device), test=split == "test")
    rows = []
    for name, genome in layers:
        scores: dict[str, list[float]] = {a.arch: [] for a in config.anchors}
        for seed in range(seeds):
            cfg = dataclasses.replace(config, seed=config.seed + seed)
            result = Evaluator(cfg, hooks=[FiniteLoss()], data=data, progress=progress)(genome)
            for a in config.anchors:
                scores[a.arch].append(result.accuracies.get(a.arch, float("nan")))
        rows.append(Row(name, str(genome), scores))
    rows.sort(key=lambda r: -r.mean if r.mean == r.mean else float("inf"))
    rerank_id = _log(tracker, run_id, config, rows, seeds, split, source)
    return rows, rerank_id


def table(rows: list[Row], anchors: list[str]) -> str:
    head = f"{'#':>2} {'layer':<14} " + " ".join(f"{a[:14]:>14}      " for a in anchors) + f" {'mean':>7}  formula"
    lines = [head]
    for i, r in enumerate(rows, 1):
        cells = " ".join(_cell(r.scores[a]) for a in anchors)
        lines.append(f"{i:>2} {r.name:<14} {cells} {r.mean:>7.3f}  {formula(Genome.parse(r.genome))}")
    lines += ["", "(mean ± sd over the seeds; 'k/n': the layer trained with k of n seeds, and its mean counts as NaN)"]
    return "\n".join(lines)


def _cell(scores: list[float]) -> str:
    """Mean ± sd of the seeds that trained, and how many did when not all: ``0.312±0.010``,
    ``0.092±0.001 2/3``, ``nan 0/3``."""
    trained = [s for s in scores if s == s]
    count = "" if len(trained) == len(scores) else f"{len(trained)}/{len(scores)}"
    if not trained:
        return f"{'nan':>8} {'':<5} {count:<5}"
    return f"{statistics.mean(trained):>8.3f}±{statistics.pstdev(trained):<5.3f} {count:<5}"


def _log(tracker: Tracker, search_run: str | None, config: EvalConfig, rows: list[Row], seeds: int, split: str,
         source: str) -> str:
    import tempfile

    anchors = [a.arch for a in config.anchors]
    run_id = tracker.start_rerank(search_run, cfgmod.to_dict(config) | {"seeds": seeds, "split": split},
                                  source=source)
    tracker.log_rerank_rows([(r.name, r.genome, r.mean) for r in rows])
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "rerank.txt").write_text(table(rows, anchors) + "\n")
        tracker.log_artifacts(Path(tmp), run_id)
    tracker.finish()
    return run_id
