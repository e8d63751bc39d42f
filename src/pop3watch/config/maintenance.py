"""Maintenance windows: when a monitor is checked and recorded, but raises no alerts.

Job: validate weekly (wall-clock, per time zone) and one-off windows and answer "is this
instant inside?" and "when does that next change?". Rule: every comparison is made between
UTC instants; wall-clock times are turned into instants with explicit DST rules, because
comparing aware datetimes that share a ``ZoneInfo`` silently compares wall clocks.

DST rules (wall-clock times are those of ``timezone``): DST never shortens a window.

* a start time that does not exist (spring forward gap) is the jump itself: ``02:30`` on
  the last Sunday of March in Europe/Berlin starts the window at 03:00 CEST, the first
  instant the clock reads 02:30 or later;
* an end time in the gap is read as PEP 495 does with ``fold=0``, shifted forward by the
  gap (``02:30`` ends at 03:30 CEST), so a window inside the gap keeps its length;
* a time that exists twice (autumn fold) starts a window at its first occurrence and ends
  it at its second.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from datetime import timezone as FixedOffset
from enum import StrEnum
from typing import Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

MINUTES_PER_DAY = 24 * 60
_TICK = timedelta(microseconds=1)


class Weekday(StrEnum):
    """Days of the week as written in the file (three lowercase letters)."""

    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"

    @property
    def number(self) -> int:
        """0 for Monday to 6 for Sunday, as ``date.weekday()``."""
        return ALL_DAYS.index(self)


ALL_DAYS: tuple[Weekday, ...] = tuple(Weekday)
_FULL_NAMES = {
    "monday": Weekday.MON,
    "tuesday": Weekday.TUE,
    "wednesday": Weekday.WED,
    "thursday": Weekday.THU,
    "friday": Weekday.FRI,
    "saturday": Weekday.SAT,
    "sunday": Weekday.SUN,
}


def _day_name(value: object) -> object:
    """Accept ``Sun``, ``SUN`` and ``sunday`` as well as ``sun``; leave the rest to pydantic."""
    if not isinstance(value, str):
        return value
    key = value.strip().lower()
    return _FULL_NAMES.get(key, key)


def zone(name: str) -> ZoneInfo:
    """The ``ZoneInfo`` for an IANA name; raises ``ValueError`` for anything else.

    ``ZoneInfo`` itself caches instances, so calling this on every check is cheap.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            "unknown time zone: use an IANA name such as UTC or Europe/Berlin"
        ) from None


def parse_hhmm(value: object, *, allow_24: bool = False) -> str:
    """Normalize ``H:MM``/``HH:MM`` to ``HH:MM``; ``24:00`` only where it means end of day."""
    if not isinstance(value, str):
        raise ValueError('must be a time written as "HH:MM" (quote it in YAML)')
    hours, sep, minutes = value.strip().partition(":")
    if not (sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError('must be a time written as "HH:MM"')
    h, m = int(hours), int(minutes)
    if allow_24 and (h, m) == (24, 0):
        return "24:00"
    if not (0 <= h <= 23 and 0 <= m <= 59 and len(hours) <= 2):
        limit = "00:00 to 24:00" if allow_24 else "00:00 to 23:59"
        raise ValueError(f"must be a time from {limit}")
    return f"{h:02d}:{m:02d}"


def _minutes(hhmm: str) -> int:
    hours, _, minutes = hhmm.partition(":")
    return int(hours) * 60 + int(minutes)


def resolve_local(local: datetime, tz: tzinfo, *, latest: bool) -> datetime:
    """The UTC instant of a naive wall-clock time in ``tz``, for the start
    (``latest=False``) or the end (``latest=True``) of a window (rules: module docstring).

    ``fold=0`` and ``fold=1`` give the same instant for ordinary times. In a fold
    (repeated hour) ``fold=0`` is the earlier instant; in a gap (skipped hour) it is the
    later one, the time shifted forward, and ``fold=1`` lies before the jump.
    """
    first = local.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = local.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if first == second:
        return first
    if first < second:  # repeated hour: both readings are real instants
        return second if latest else first
    if latest:
        return first
    # In the gap: find the jump, the earliest instant whose wall clock reads ``local``
    # or later. ``second`` reads earlier, ``first`` later; bisect to the microsecond.
    before, after = second, first
    while after - before > _TICK:
        middle = before + (after - before) // 2
        if middle.astimezone(tz).replace(tzinfo=None) >= local:
            after = middle
        else:
            before = middle
    return after


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


class WeeklySchedule(BaseModel):
    """A window repeating every week on ``days``, from ``start`` to ``end`` wall-clock time.

    ``days`` are the days the window *starts* on. ``end`` earlier than ``start`` crosses
    midnight (``sun 23:00`` to ``01:00`` ends on Monday); ``end: "24:00"`` means the end of
    the start day, so ``00:00``-``24:00`` is a whole day. ``days`` defaults to every day.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: tuple[Weekday, ...] = ALL_DAYS
    start: str
    end: str

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, value: Any) -> Any:
        if isinstance(value, str):  # "days: sun" is a common slip for "days: [sun]"
            value = [value]
        if not isinstance(value, list | tuple):
            return value
        return [_day_name(v) for v in value]

    @field_validator("days", mode="after")
    @classmethod
    def _days_in_week_order(cls, value: tuple[Weekday, ...]) -> tuple[Weekday, ...]:
        # Checked here, not with min_length: pydantic would add a length error to every
        # misspelled day.
        if not value:
            raise ValueError("needs at least one day (leave days out for every day)")
        return tuple(day for day in ALL_DAYS if day in value)

    @field_validator("start", mode="before")
    @classmethod
    def _start(cls, value: object) -> str:
        return parse_hhmm(value)

    @field_validator("end", mode="before")
    @classmethod
    def _end(cls, value: object) -> str:
        return parse_hhmm(value, allow_24=True)

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if _minutes(self.end) == self.start_minute:
            raise PydanticCustomError(
                "empty_window",
                'start and end must differ (for a whole day use "00:00" to "24:00")',
                {"field": "end"},
            )
        return self

    @property
    def start_minute(self) -> int:
        return _minutes(self.start)

    @property
    def end_minute(self) -> int:
        """Minutes after midnight of the start day; above 1440 when crossing midnight."""
        end = _minutes(self.end)
        return end if end > self.start_minute else end + MINUTES_PER_DAY

    @property
    def crosses_midnight(self) -> bool:
        return self.end_minute > MINUTES_PER_DAY


class MaintenanceWindow(BaseModel):
    """Either ``weekly`` or a one-off ``start``/``end``, in ``timezone`` (default UTC).

    One-off bounds may carry an offset (ISO 8601); naive ones are read in ``timezone``
    with the DST rules of this module, and kept with a fixed offset. Intervals are
    half-open: active at ``start``, no longer active at ``end``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # timezone comes first: the start/end validators read it to place naive times.
    timezone: str = "UTC"
    weekly: WeeklySchedule | None = None
    start: datetime | None = None
    end: datetime | None = None

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("start", "end")
    @classmethod
    def _place(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is None or value.utcoffset() is not None:
            return value
        name = info.data.get("timezone")
        if name is None:  # the time zone itself is invalid and already reported
            return value
        instant = resolve_local(value, zone(name), latest=info.field_name == "end")
        local = instant.astimezone(zone(name))
        offset = local.utcoffset()
        assert offset is not None
        return local.astimezone(FixedOffset(offset))

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if self.weekly is not None:
            for name in ("start", "end"):
                if getattr(self, name) is not None:
                    raise PydanticCustomError(
                        "window_kind",
                        "give either weekly or start/end, not both",
                        {"field": name},
                    )
            return self
        if self.start is None and self.end is None:
            raise PydanticCustomError(
                "window_kind",
                "a maintenance window needs weekly: {days, start, end} or start and end",
                {},
            )
        if self.start is None or self.end is None:
            missing = "start" if self.start is None else "end"
            other = "end" if missing == "start" else "start"
            raise PydanticCustomError(
                "window_bounds",
                "a one-off window needs both start and end ({missing} is missing)",
                {"field": other, "missing": missing},
            )
        if self.start.utcoffset() is None or self.end.utcoffset() is None:
            return self  # invalid time zone, already reported
        if self.end <= self.start:
            raise PydanticCustomError("window_bounds", "end must be after start", {"field": "end"})
        return self

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.timezone)

    def intervals(
        self, around: datetime, *, days_before: int = 2, days_after: int = 9
    ) -> Iterator[tuple[datetime, datetime]]:
        """UTC ``(start, end)`` intervals of this window starting near ``around``.

        Weekly occurrences are generated for start days from ``days_before`` days before
        to ``days_after`` days after ``around``'s local date; a one-off window yields its
        one interval whatever ``around`` is.
        """
        _require_aware(around, "around")
        if self.weekly is None:
            assert self.start is not None
            assert self.end is not None
            yield self.start.astimezone(UTC), self.end.astimezone(UTC)
            return
        tz = self.tz
        today = around.astimezone(tz).date()
        weekdays = {day.number for day in self.weekly.days}
        for offset in range(-days_before, days_after + 1):
            day = today + timedelta(days=offset)
            if day.weekday() in weekdays:
                yield self._occurrence(day, tz)

    def _occurrence(self, day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
        assert self.weekly is not None
        midnight = datetime.combine(day, time())
        start = resolve_local(
            midnight + timedelta(minutes=self.weekly.start_minute), tz, latest=False
        )
        end = resolve_local(midnight + timedelta(minutes=self.weekly.end_minute), tz, latest=True)
        return start, end

    def active(self, at: datetime) -> bool:
        """True when ``at`` (timezone-aware) is inside the window; raises ``ValueError``
        for a naive ``at``, because guessing its zone would misplace the window."""
        _require_aware(at, "at")
        instant = at.astimezone(UTC)
        return any(start <= instant < end for start, end in self.intervals(at, days_after=0))

    def next_change(self, after: datetime) -> datetime | None:
        """The first instant after ``after`` where ``active`` flips, in UTC; ``None`` if it
        never does (a past one-off window, or a weekly window covering the whole week).

        Adjacent occurrences (``sun`` and ``mon`` ``00:00``-``24:00``) are one stretch: the
        change is where the last one ends.
        """
        _require_aware(after, "after")
        instant = after.astimezone(UTC)
        now = self.active(after)
        bounds = sorted(
            {edge for interval in self.intervals(after) for edge in interval if edge > instant}
        )
        for edge in bounds:
            if self.active(edge) != now:
                return edge
        return None
