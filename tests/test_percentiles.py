"""One nearest-rank percentile for the scheduler, the stored p95 and the benchmarks."""

from __future__ import annotations

import pytest

from pop3watch.percentiles import nearest_rank


def test_empty_has_no_percentile() -> None:
    assert nearest_rank([]) is None
    assert nearest_rank([], 99.9) is None


@pytest.mark.parametrize(
    ("percent", "n", "rank"),
    [
        (95, 20, 19),
        (99, 200, 198),
        (100, 7, 7),
        (0, 7, 1),  # never below the smallest value
        (99.9, 1_000, 999),  # a float percent computed exactly, not 1,000 by rounding
        (50.5, 200, 101),
        (0.1, 1_000, 1),
    ],
)
def test_rank_is_ceil_of_percent_times_n(percent: float, n: int, rank: int) -> None:
    values = [float(i) for i in range(1, n + 1)]
    assert nearest_rank(values, percent) == float(rank)
