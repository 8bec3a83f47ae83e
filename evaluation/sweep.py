"""The small-batch test: accuracy against training batch size (the paper's Figure 1, right, in small).

Each layer (and the references) is trained in one torchvision network at every batch size, with
the learning rate scaled linearly with the batch size (``lr * b / train.batch_size``, the base
being the config's) and the same number of training images seen at every size (``images // b``
steps), so only the batch size changes. Accuracy is measured in eval mode, where batch
statistics come from the running estimates: that is where BatchNorm fails at small batches.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from evaluation.config import EvalConfig
from evaluation.evaluate import load_data, resolve_device
from evaluation.train import Progress
from evaluation.transfer import Row, TransferConfig, run_transfer
from gp import Genome


@dataclass(frozen=True)
class SweepPoint:
    batch_size: int
    steps: int
    lr: float
    rows: tuple[Row, ...]  # one per layer


def batch_sweep(specs: list[tuple[str, Genome]], cfg: TransferConfig, batch_sizes: list[int], images: int, *,
                progress: Progress | None = None) -> list[SweepPoint]:
    """Train every layer at every batch size (largest first); ``images`` training images each."""
    if not batch_sizes or any(b < 1 for b in batch_sizes):
        raise ValueError(f"batch sizes must be positive integers, got {batch_sizes}")
    if images < max(batch_sizes):
        raise ValueError(f"images ({images}) must be at least the largest batch size ({max(batch_sizes)})")
    data = load_data(EvalConfig(data=cfg.data), resolve_device(cfg.device), test=cfg.split == "test")
    points = []
    for b in sorted(set(batch_sizes), reverse=True):
        lr = cfg.train.lr * b / cfg.train.batch_size
        train = dataclasses.replace(cfg.train, batch_size=b, lr=lr, steps=max(1, images // b))
        rows = run_transfer(specs, dataclasses.replace(cfg, train=train), progress=progress, data=data)
        points.append(SweepPoint(b, train.steps, lr, tuple(rows)))
    return points


def curves(points: list[SweepPoint]) -> dict[str, list[tuple[int, float, float]]]:
    """{layer: [(batch size, mean accuracy, sd), ...]}, what ``analysis.sweep.plot`` draws."""
    out: dict[str, list[tuple[int, float, float]]] = {}
    for p in points:
        for r in p.rows:
            out.setdefault(r.label, []).append((p.batch_size, r.mean, r.sd))
    return out


def table(points: list[SweepPoint]) -> str:
    labels = [r.label for r in points[0].rows]
    head = f"{'batch':>5} {'steps':>6} {'lr':>8}  " + "  ".join(f"{label[:15]:>15}" for label in labels)
    lines = [head]
    for p in points:
        cells = "  ".join(f"{r.mean:>7.3f} ± {r.sd:<5.3f}" + (f" ({len(r.failures)} diverged)" if r.failures else "")
                          for r in p.rows)
        lines.append(f"{p.batch_size:>5} {p.steps:>6} {p.lr:>8.4f}  {cells}")
    return "\n".join(lines)


def log(tracker, points: list[SweepPoint], cfg: TransferConfig, plot_path: Path) -> str:
    """One parent run (kind ``transfer``, name ``sweep-MODEL``) and a child run per layer and batch
    size, the table and the plot as artifacts; returns the parent's id."""
    params = dataclasses.asdict(cfg) | {"batch_sizes": [p.batch_size for p in points]}
    run_id = tracker.start_transfer(f"sweep-{cfg.model}", params)
    for p in points:
        for r in p.rows:
            tracker.log_transfer_layer(f"{r.label}@{p.batch_size}", r.genome, list(r.accuracies),
                                       {"batch_size": p.batch_size, "steps": p.steps, "lr": p.lr,
                                        "seconds.step": r.step_seconds}, native=r.native)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "sweep.txt").write_text(table(points) + "\n")
        if plot_path.exists():
            shutil.copy(plot_path, Path(tmp) / plot_path.name)
        tracker.log_artifacts(Path(tmp), run_id)
    tracker.finish()
    return run_id
