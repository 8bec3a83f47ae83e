"""Functional-equivalence cache: which evaluated layer computes (nearly) the same function.

A signature is a layer's outputs at fixed probe positions (:func:`gp.checks.signature`). Equal
functions written differently give signatures that agree up to float noise, not bit for bit, so
an exact hash of rounded values misses some true matches. The cache buckets signatures by a
coarse summary (their root-mean-square, in half-octaves, and which positions are not finite),
looks in the signature's bucket and both neighbours, and confirms a match element-wise with a
relative tolerance: a value near a bucket edge still finds its match in the next bucket.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

RTOL = 1e-4  # relative agreement of two equivalent layers (float32 noise is ~1e-6)
ATOL = 1e-6  # absolute, scaled by the signature's rms


def _summary(values: np.ndarray) -> tuple[bytes, int]:
    finite = np.isfinite(values)
    rms = float(np.sqrt(np.mean(values[finite] ** 2))) if finite.any() else 0.0
    level = math.floor(2 * math.log2(rms)) if rms > 1e-30 else -10**6
    pattern = np.where(finite, 0, np.where(np.isnan(values), 1, np.sign(values) + 2)).astype(np.int8)
    return pattern.tobytes(), level


def _close(stored: np.ndarray, values: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    """Row mask of ``stored`` (n, d) signatures equal to ``values`` (d,): the same non-finite
    positions (checked by the bucket key) and close finite values."""
    finite = np.isfinite(values)
    x, y = stored[:, finite], values[finite]
    if y.size == 0:
        return np.ones(len(stored), dtype=bool)
    scale = float(np.sqrt(np.mean(y ** 2)))
    bound = atol * (1 + scale) + rtol * np.maximum(np.abs(x), np.abs(y))
    return np.all(np.abs(x - y) <= bound, axis=1)


def same_function(a: np.ndarray, b: np.ndarray, rtol: float = RTOL, atol: float = ATOL) -> bool:
    """True when two signatures agree: the same non-finite positions, finite values close."""
    if a.shape != b.shape or _summary(a)[0] != _summary(b)[0]:
        return False
    return bool(_close(a[None, :], b, rtol, atol)[0])


class _Bucket:
    """Signatures of one coarse summary, compared all at once."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.ordinals: list[int] = []
        self._matrix: np.ndarray | None = None

    def find(self, values: np.ndarray, rtol: float, atol: float) -> int | None:
        if not self.rows:
            return None
        if self._matrix is None or len(self._matrix) != len(self.rows):
            self._matrix = np.stack(self.rows)
        hits = np.flatnonzero(_close(self._matrix, values, rtol, atol))
        return int(hits[0]) if hits.size else None


class FunctionCache:
    """Maps signatures to the ordinal of the first record that computed that function."""

    def __init__(self, rtol: float = RTOL, atol: float = ATOL) -> None:
        self.rtol, self.atol = rtol, atol
        self._buckets: dict[tuple[bytes, int], _Bucket] = defaultdict(_Bucket)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def _locate(self, values: np.ndarray) -> tuple[_Bucket, int] | None:
        pattern, level = _summary(values)
        for lv in (level, level - 1, level + 1):
            bucket = self._buckets.get((pattern, lv))
            if bucket is not None:
                row = bucket.find(values, self.rtol, self.atol)
                if row is not None:
                    return bucket, row
        return None

    def find(self, values: np.ndarray) -> int | None:
        found = self._locate(values)
        return None if found is None else found[0].ordinals[found[1]]

    def add(self, values: np.ndarray, ordinal: int) -> None:
        """Remember ``values`` for ``ordinal`` unless an equal function is already known."""
        if self._locate(values) is None:
            bucket = self._buckets[_summary(values)]
            bucket.rows.append(np.asarray(values, dtype=np.float64))
            bucket.ordinals.append(ordinal)
            self._size += 1

    def discard(self, values: np.ndarray) -> None:
        """Forget the entry equal to ``values`` (for in-flight sets)."""
        found = self._locate(values)
        if found is not None:
            bucket, row = found
            del bucket.rows[row], bucket.ordinals[row]
            bucket._matrix = None
            self._size -= 1
