"""Nearest-rank percentiles, defined once for the whole product.

Job: the smallest observed value with at least ``percent`` % of the values at or below
it, i.e. the ``ceil(percent / 100 * n)``-th smallest (PostgreSQL's ``percentile_disc``
computes the same). Used by the scheduler's lateness figures, the stored p95 of response
times and the benchmarks. Rule: exact arithmetic, so 99.9 % of 1,000 values is the 999th
and not, through float rounding, the 1,000th.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction


def nearest_rank(sorted_values: Sequence[float], percent: float = 95) -> float | None:
    """The nearest-rank percentile of already sorted values (None when empty)."""
    n = len(sorted_values)
    if n == 0:
        return None
    if isinstance(percent, int):
        rank = (percent * n + 99) // 100  # the common case, in integers
    else:
        rank = math.ceil(Fraction(str(percent)) * n / 100)
    return sorted_values[min(max(rank, 1), n) - 1]
