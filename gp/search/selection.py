"""Tournament winner criteria: plug-ins taking the members' objectives and a Generator.

Both receive only members that may win (status ok, finite objectives), so rejected and failed
candidates never win and NaN never reaches the sorting. pymoo minimises: accuracies are negated
at this boundary.
"""

from __future__ import annotations

import numpy as np
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting


def pareto_front(objectives: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated rows of ``objectives`` (rows: members; higher is better)."""
    assert np.isfinite(objectives).all(), "objectives must be sanitised before sorting"
    return np.asarray(NonDominatedSorting().do(-objectives, only_non_dominated_front=True), dtype=int)


def pareto_winner(objectives: np.ndarray, rng: np.random.Generator) -> int:
    """A uniformly random member of the tournament's Pareto front (the paper's choice)."""
    front = pareto_front(objectives)
    return int(front[rng.integers(len(front))])


def average_winner(objectives: np.ndarray, rng: np.random.Generator) -> int:
    """The member with the best mean score; ties broken uniformly."""
    means = objectives.mean(axis=1)
    best = np.flatnonzero(means == means.max())
    return int(best[rng.integers(len(best))])


CRITERIA = {"pareto": pareto_winner, "average": average_winner}
