"""Plots of a search, from its records alone (no training, no tracking calls)."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gp.search import Record, pareto_front  # noqa: E402
from gp.search import best_so_far as _best_so_far  # noqa: E402
from gp.search.record import REJECTED  # noqa: E402


def best_so_far(records: list[Record]) -> tuple[np.ndarray, np.ndarray]:
    """(evaluations, best mean score so far) over the evaluated candidates, in order, as arrays
    (:func:`gp.search.best_so_far` computes it)."""
    ys = np.array(_best_so_far(records), dtype=float)
    return np.arange(1, len(ys) + 1), ys


def progress(runs: dict[str, list[Record]], path: Path, baseline: float | None = None) -> Path:
    """Best-so-far mean accuracy against candidates evaluated, one line per search (Figure 10)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, records in runs.items():
        x, y = best_so_far(records)
        if np.isnan(y).all():
            ax.plot([], [], label=f"{label}: no layer passed every check")
            continue
        ax.step(x, y, where="post", label=label)
    if baseline is not None:
        ax.axhline(baseline, color="grey", linestyle="--", label=f"BN-ReLU ({baseline:.3f})")
    ax.set_xlabel("candidates evaluated")
    ax.set_ylabel("best mean validation accuracy")
    ax.set_title("Search progress")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def pareto(records: list[Record], anchors: list[str], path: Path) -> Path:
    """Accuracy on each pair of anchors; each pair's Pareto front highlighted."""
    scored = [r for r in records if r.objectives is not None and r.evaluated]
    pairs = list(itertools.combinations(range(len(anchors)), 2)) or [(0, 0)]
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.6 * len(pairs), 4.2), squeeze=False)
    for ax, (i, j) in zip(axes[0], pairs, strict=True):
        if scored:
            pts = np.array([[r.objectives[i], r.objectives[j]] for r in scored])
            front = pareto_front(pts)
            ax.scatter(pts[:, 0], pts[:, 1], s=14, alpha=0.5, label="candidates")
            f = pts[front][np.argsort(pts[front][:, 0])]
            ax.plot(f[:, 0], f[:, 1], "o-", color="crimson", label="Pareto front")
        ax.set_xlabel(f"accuracy, {anchors[i]}")
        ax.set_ylabel(f"accuracy, {anchors[j]}")
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:  # one legend for all panels, below them, off the points
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False)
    fig.suptitle("Pareto fronts across anchors")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def rejections(records: list[Record], path: Path) -> Path:
    """Candidates by outcome: passed, duplicate, failed, and rejected by stage."""
    counts = Counter("rejected: " + (r.stage or "?") if r.status == REJECTED else r.status for r in records)
    labels = sorted(counts, key=lambda k: -counts[k])
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(labels) + 1.5))
    ax.barh(labels[::-1], [counts[k] for k in labels[::-1]], color="slategray")
    for y, k in enumerate(labels[::-1]):
        ax.text(counts[k], y, f" {counts[k]}", va="center")
    ax.set_xlabel("candidates")
    ax.set_title("Outcomes and rejections by stage")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def head_to_head(rows: list[tuple[str, float, float, bool]], path: Path, title: str, criteria: list[str],
                 margin: float = 0.0) -> Path:
    """Evolution's final mean best against random search's, one point per target and criterion, a
    panel per criterion; above the diagonal evolution ended higher. ``rows``: (criterion, random's
    mean, evolution's mean, whether evolution won at least 8 of 10 seeds); filled points won. The
    legend counts the points above the diagonal by more than ``margin``."""
    fig, axes = plt.subplots(1, len(criteria), figsize=(4.6 * len(criteria), 4.6), squeeze=False)
    values = [v for _, r, e, _ in rows for v in (r, e)]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    pad = 0.04 * (hi - lo or 1.0)
    for ax, criterion in zip(axes[0], criteria, strict=True):
        mine = [row for row in rows if row[0] == criterion]
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="grey", linestyle="--", linewidth=1)
        for won, style in ((True, {"color": "tab:blue"}), (False, {"facecolors": "none", "edgecolors": "tab:red"})):
            pts = np.array([(r, e) for _, r, e, w in mine if w == won]).reshape(-1, 2)
            above = int((pts[:, 1] > pts[:, 0] + margin).sum())
            label = (f"won >= 8/10 seeds ({len(pts)})" if won else f"did not ({len(pts)})") + f", {above} higher"
            ax.scatter(pts[:, 0], pts[:, 1], s=30, label=label, **style)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_xlabel("random search: final mean best")
        ax.set_ylabel("evolution: final mean best")
        ax.set_title(criterion)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
