"""Parse "how far back" options: ``90m``, ``24h``, ``30d``, ``2w`` or an ISO 8601 instant."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import typer

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)


def parse_since(text: str, now: datetime) -> timedelta:
    """The span from the given instant (or duration ago) to ``now``; a clear error otherwise."""
    match = _DURATION.match(text)
    if match:
        try:
            span = timedelta(**{_UNITS[match.group(2).lower()]: float(match.group(1))})
            now - span  # the span must also reach back to a real date
        except OverflowError:
            raise typer.BadParameter(f"{text!r} reaches back before the year 1") from None
        return span
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither a duration like 24h/30d nor an ISO date"
        ) from None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    if instant > now:
        raise typer.BadParameter(f"{text!r} is in the future")
    return now - instant
