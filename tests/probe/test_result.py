"""The result's own helpers (pure, no network)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from pop3watch.probe.result import round_ms

# A check's timings: from nothing up to the longest timeout (900 s), in milliseconds.
_MS = st.floats(min_value=0.0, max_value=900_000.0, allow_nan=False, allow_infinity=False)


@given(_MS)
def test_round_ms_keeps_three_decimals_and_stays_within_half_a_microsecond(value: float) -> None:
    rounded = round_ms(value)
    assert rounded == round(rounded, 3)
    assert math.isclose(rounded, value, abs_tol=0.0005 + 1e-9)


@given(_MS)
def test_round_ms_agrees_with_round_except_on_exact_halves(value: float) -> None:
    scaled = value * 1000
    if abs(scaled - math.floor(scaled) - 0.5) > 1e-6:
        assert round_ms(value) == round(value, 3)


def test_round_ms_examples() -> None:
    assert round_ms(12.3456789) == 12.346
    assert round_ms(0.0) == 0.0
    assert round_ms(0.0004) == 0.0
    assert round_ms(199.9996) == 200.0
