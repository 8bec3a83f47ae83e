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


def same_function(a: np.ndarray, b: np.ndarray, rtol: float = RTOL, atol: float = ATOL) -> bool:
    """True when two signatures agree: the same non-finite positions, finite values close."""
    if a.shape != b.shape:
        return False
    fa, fb = np.isfinite(a), np.isfinite(b)
    if not np.array_equal(fa, fb) or not np.array_equal(np.nan_to_num(a[~fa], nan=0.0), np.nan_to_num(b[~fb], nan=0.0)):
        return False
    x, y = a[fa], b[fb]
    if x.size == 0:
        return True
    scale = float(np.sqrt(np.mean(y ** 2)))
    return bool(np.all(np.abs(x - y) <= atol * (1 + scale) + rtol * np.maximum(np.abs(x), np.abs(y))))


class FunctionCache:
    """Maps signatures to the ordinal of the first record that computed that function."""

    def __init__(self, rtol: float = RTOL, atol: float = ATOL) -> None:
        self.rtol, self.atol = rtol, atol
        self._buckets: dict[tuple[bytes, int], list[tuple[np.ndarray, int]]] = defaultdict(list)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def find(self, values: np.ndarray) -> int | None:
        pattern, level = _summary(values)
        for lv in (level, level - 1, level + 1):
            for stored, ordinal in self._buckets.get((pattern, lv), ()):
                if same_function(values, stored, self.rtol, self.atol):
                    return ordinal
        return None

    def add(self, values: np.ndarray, ordinal: int) -> None:
        """Remember ``values`` for ``ordinal`` unless an equal function is already known."""
        if self.find(values) is None:
            self._buckets[_summary(values)].append((np.asarray(values, dtype=np.float64), ordinal))
            self._size += 1

    def discard(self, values: np.ndarray) -> None:
        """Forget the entry equal to ``values`` (for in-flight sets)."""
        pattern, level = _summary(values)
        for lv in (level, level - 1, level + 1):
            bucket = self._buckets.get((pattern, lv), [])
            for i, (stored, _) in enumerate(bucket):
                if same_function(values, stored, self.rtol, self.atol):
                    del bucket[i]
                    self._size -= 1
                    return
