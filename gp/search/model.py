"""A surrogate of the fitness in behaviour space, for choosing which of several proposals to evaluate.

A layer's behaviour is its signature (:func:`gp.checks.signature`): its outputs at fixed positions
of fixed probe batches. Layers that compute nearly the same outputs score nearly the same under
any fitness that reads their outputs, so scores are smooth in behaviour space even where they
are rugged in genome space (one changed op can leave the function unchanged or change it
completely). Surrogate-assisted GP uses this "phenotypic characterisation" to rank offspring
before evaluating them (Hildebrandt and Branke, 2015).

The model is Gaussian-process regression with a squared-exponential kernel on compressed
signatures (``sign(v) log(1 + |v|)``, so an ``exp`` layer does not dominate every distance), on
scores mapped to normal quantiles by rank (the fitness's scale, and its outliers, do not matter).
A proposal's value is its expected improvement over the best score seen: a proposal behaving like
a good layer, or unlike anything evaluated yet (high uncertainty), is worth evaluating; one
behaving like a mediocre layer is not.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr, ndtri
from scipy.stats import rankdata

CLIP = 20.0  # compressed signature values are clipped here; non-finite values map to the clip
NUGGET = 1e-3  # noise variance of the normalised scores (the real task's scores are noisy)


def features(signature: np.ndarray) -> np.ndarray:
    """A signature compressed for distances: ``sign(v) log(1 + |v|)``, clipped to ``±CLIP``;
    NaN maps to 0 and infinities to the clip."""
    v = np.asarray(signature, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        out = np.sign(v) * np.log1p(np.abs(v))
    return np.clip(np.nan_to_num(out, nan=0.0, posinf=CLIP, neginf=-CLIP), -CLIP, CLIP)


def _normal_scores(y: np.ndarray) -> np.ndarray:
    """``y`` replaced by the standard-normal quantiles of its ranks (ties share their mean rank)."""
    return ndtri((rankdata(y) - 0.5) / len(y))


def _sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean squared difference between the rows of ``a`` and of ``b``."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.maximum(d, 0.0) / a.shape[1]


class BehaviourModel:
    """Gaussian-process regression of scores on behaviour, fitted once per choice.

    ``x``: (n, d) features of evaluated layers (:func:`features`); ``y``: their scores (higher is
    better). The length scale is the median distance between distinct evaluated behaviours.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        if len(x) != len(y) or len(x) < 2:
            raise ValueError(f"need at least 2 evaluated layers with as many scores, got {len(x)} and {len(y)}")
        self.x = np.asarray(x, dtype=np.float64)
        z = _normal_scores(np.asarray(y, dtype=np.float64))
        self.best = float(z.max())
        d = _sqdist(self.x, self.x)
        positive = d[np.triu_indices(len(d), 1)]
        positive = positive[positive > 1e-12]
        self.scale = float(np.median(positive)) if positive.size else 1.0
        k = np.exp(-0.5 * d / self.scale) + NUGGET * np.eye(len(d))
        self.chol = np.linalg.cholesky(k)
        self.alpha = np.linalg.solve(self.chol.T, np.linalg.solve(self.chol, z))

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the normalised score at each row of ``x``."""
        ks = np.exp(-0.5 * _sqdist(np.asarray(x, dtype=np.float64), self.x) / self.scale)
        mean = ks @ self.alpha
        v = np.linalg.solve(self.chol, ks.T)
        var = np.maximum(1.0 + NUGGET - (v * v).sum(0), 1e-12)
        return mean, np.sqrt(var)

    def expected_improvement(self, x: np.ndarray) -> np.ndarray:
        """Expected improvement over the best evaluated score, for each row of ``x``."""
        mean, sd = self.predict(x)
        z = (mean - self.best) / sd
        return (mean - self.best) * ndtr(z) + sd * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
