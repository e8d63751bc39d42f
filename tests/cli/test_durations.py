"""How far back `history --since` and `report --period` reach."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import typer

from pop3watch.cli.durations import parse_since

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "span"),
    [("90m", timedelta(minutes=90)), ("24h", timedelta(hours=24)), ("2w", timedelta(weeks=2))],
)
def test_durations(text: str, span: timedelta) -> None:
    assert parse_since(text, NOW) == span


@pytest.mark.parametrize("text", ["3000000d", "99999999999d", "9999999999999999999w"])
def test_a_span_beyond_the_calendar_is_a_clear_error(text: str) -> None:
    with pytest.raises(typer.BadParameter, match="before the year 1"):
        parse_since(text, NOW)


def test_an_iso_instant_in_the_future_is_refused() -> None:
    with pytest.raises(typer.BadParameter, match="future"):
        parse_since("2030-01-01", NOW)
