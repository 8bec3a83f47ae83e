"""The batch-size sweep's plot: accuracy against batch size, one line per layer (from numbers
alone; no training, no tracking calls)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot(curves: dict[str, list[tuple[int, float, float]]], path: Path, *, title: str = "") -> Path:
    """``curves``: {layer: [(batch size, mean accuracy, sd), ...]}; batch size on a log2 axis,
    largest on the left as in the paper's Figure 1; error bars are one sd over seeds."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    sizes = sorted({b for points in curves.values() for b, _, _ in points}, reverse=True)
    for label, points in curves.items():
        points = sorted(points, reverse=True)
        xs = [b for b, _, _ in points]
        ys = [m if math.isfinite(m) else float("nan") for _, m, _ in points]
        ax.errorbar(xs, ys, yerr=[s if math.isfinite(s) else 0.0 for _, _, s in points], marker="o", capsize=3,
                    label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(b) for b in sizes])
    ax.invert_xaxis()
    ax.set_xlabel("batch size (same images seen; learning rate scaled linearly)")
    ax.set_ylabel("accuracy")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)  # off the points
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
