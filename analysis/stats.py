"""The statistic behind every "evolution beats random search" claim: a one-sided sign test."""

from __future__ import annotations

import math


def sign_test(wins: int, losses: int) -> float:
    """One-sided sign test: the chance of at least ``wins`` wins in ``wins + losses`` fair coin
    flips (ties dropped); 1.0 when there is nothing to count."""
    n = wins + losses
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2**n if n else 1.0
