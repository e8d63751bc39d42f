"""Maintenance windows: weekly wall-clock windows across midnight and DST, one-off windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from pop3watch.config import MaintenanceWindow, Weekday, WeeklySchedule

BERLIN = ZoneInfo("Europe/Berlin")
# 2026: CET -> CEST on Sunday 29 March at 02:00 (01:00 UTC);
#       CEST -> CET on Sunday 25 October at 03:00 (01:00 UTC).
SPRING = datetime(2026, 3, 29, tzinfo=UTC)
AUTUMN = datetime(2026, 10, 25, tzinfo=UTC)


def weekly(days: list[str], start: str, end: str, tz: str = "UTC") -> MaintenanceWindow:
    return MaintenanceWindow.model_validate(
        {"weekly": {"days": days, "start": start, "end": end}, "timezone": tz}
    )


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


def active_span(window: MaintenanceWindow, day: datetime) -> tuple[datetime, datetime]:
    """The first active stretch on ``day`` (UTC), found minute by minute."""
    minutes = [day + timedelta(minutes=m) for m in range(36 * 60)]
    inside = [t for t in minutes if window.active(t)]
    assert inside, "window never active"
    return inside[0], inside[-1] + timedelta(minutes=1)


# --- weekly, plain ----------------------------------------------------------------------


def test_weekly_window_is_half_open() -> None:
    window = weekly(["sun"], "02:00", "04:00")
    # 2026-03-01 is a Sunday
    assert not window.active(utc(2026, 3, 1, 1, 59, 59))
    assert window.active(utc(2026, 3, 1, 2, 0))
    assert window.active(utc(2026, 3, 1, 3, 59, 59))
    assert not window.active(utc(2026, 3, 1, 4, 0))
    assert not window.active(utc(2026, 3, 2, 3, 0))  # Monday


def test_weekly_window_in_a_time_zone_uses_its_wall_clock() -> None:
    window = weekly(["sun"], "02:00", "04:00", "Europe/Berlin")
    # 2026-01-04 is a Sunday; Berlin is UTC+1 in winter
    assert not window.active(utc(2026, 1, 4, 0, 59))  # 01:59 in Berlin
    assert window.active(utc(2026, 1, 4, 1, 0))  # 02:00 in Berlin
    assert window.active(datetime(2026, 1, 4, 3, 0, tzinfo=BERLIN))
    assert not window.active(utc(2026, 1, 4, 3, 0))


def test_window_crossing_midnight_ends_the_next_day() -> None:
    window = weekly(["sat"], "23:30", "00:30")
    # 2026-03-07 is a Saturday
    assert not window.active(utc(2026, 3, 7, 23, 29))
    assert window.active(utc(2026, 3, 7, 23, 45))
    assert window.active(utc(2026, 3, 8, 0, 15))
    assert not window.active(utc(2026, 3, 8, 0, 30))
    assert not window.active(utc(2026, 3, 8, 23, 45))  # Sunday is not a start day


def test_sunday_night_window_wraps_into_monday() -> None:
    window = weekly(["sun"], "22:00", "02:00")
    assert window.active(utc(2026, 3, 9, 1, 0))  # Monday 01:00
    assert not window.active(utc(2026, 3, 9, 2, 0))
    assert not window.active(utc(2026, 3, 3, 1, 0))  # Tuesday


def test_end_24_00_means_end_of_the_start_day() -> None:
    window = weekly(["wed"], "00:00", "24:00")
    assert window.active(utc(2026, 3, 4, 0, 0))  # Wednesday
    assert window.active(utc(2026, 3, 4, 23, 59, 59))
    assert not window.active(utc(2026, 3, 5, 0, 0))
    assert window.weekly is not None
    assert not window.weekly.crosses_midnight


def test_days_default_to_the_whole_week_and_are_normalized() -> None:
    assert weekly.__name__  # keep the helper honest
    schedule = WeeklySchedule.model_validate({"start": "2:00", "end": "3:00"})
    assert schedule.days == tuple(Weekday)
    assert (schedule.start, schedule.end) == ("02:00", "03:00")
    written = WeeklySchedule.model_validate(
        {"days": ["Sunday", "MON", "sun", "fri"], "start": "02:00", "end": "03:00"}
    )
    assert written.days == (Weekday.MON, Weekday.FRI, Weekday.SUN)
    single = WeeklySchedule.model_validate({"days": "sat", "start": "02:00", "end": "03:00"})
    assert single.days == (Weekday.SAT,)


@pytest.mark.parametrize(
    ("start", "end"),
    [("24:00", "02:00"), ("02:60", "03:00"), ("2", "03:00"), ("02:00", "24:01"), ("ab:cd", "1")],
)
def test_bad_times_are_refused(start: str, end: str) -> None:
    with pytest.raises(ValidationError):
        WeeklySchedule.model_validate({"start": start, "end": end})


def test_naive_instants_are_refused() -> None:
    window = weekly(["sun"], "02:00", "04:00")
    with pytest.raises(ValueError, match="timezone-aware"):
        window.active(datetime(2026, 3, 1, 3, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        window.next_change(datetime(2026, 3, 1, 3, 0))


# --- DST --------------------------------------------------------------------------------


def test_spring_forward_window_starting_in_the_gap_keeps_its_end() -> None:
    # 02:00 does not exist on 29 March in Berlin: the window starts when the clock
    # jumps (03:00 CEST = 01:00 UTC) and ends at 04:00 CEST (02:00 UTC): one real hour.
    window = weekly(["sun"], "02:00", "04:00", "Europe/Berlin")
    assert active_span(window, SPRING) == (utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 2, 0))


def test_spring_forward_window_inside_the_gap_is_shifted_not_lost() -> None:
    # 02:00-02:30 never happens on the wall clock; it is read shifted forward by the gap
    # (PEP 495 fold=0): 03:00-03:30 CEST, i.e. 01:00-01:30 UTC.
    window = weekly(["sun"], "02:00", "02:30", "Europe/Berlin")
    assert active_span(window, SPRING) == (utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 1, 30))


def test_spring_forward_start_in_the_gap_starts_at_the_jump() -> None:
    # 02:30 does not exist: the window starts at the jump (03:00 CEST = 01:00 UTC), the
    # first instant the clock reads 02:30 or later; it ends at 03:30 CEST (01:30 UTC).
    window = weekly(["sun"], "02:30", "03:30", "Europe/Berlin")
    assert active_span(window, SPRING) == (utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 1, 30))


def test_naive_one_off_starting_in_the_gap_is_still_valid() -> None:
    window = MaintenanceWindow.model_validate(
        {"start": "2026-03-29T02:50", "end": "2026-03-29T03:10", "timezone": "Europe/Berlin"}
    )
    assert window.start == utc(2026, 3, 29, 1, 0)
    assert window.end == utc(2026, 3, 29, 1, 10)


def test_fall_back_window_covers_both_repeated_hours() -> None:
    # 02:00-04:00 on 25 October: starts at the first 02:00 (CEST, 00:00 UTC), ends at
    # 04:00 CET (03:00 UTC): three real hours.
    window = weekly(["sun"], "02:00", "04:00", "Europe/Berlin")
    assert active_span(window, AUTUMN) == (utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 3, 0))


def test_fall_back_window_ending_in_the_repeated_hour_ends_at_its_second_occurrence() -> None:
    window = weekly(["sun"], "01:00", "02:30", "Europe/Berlin")
    # 01:00 CEST = 23:00 UTC (Saturday); the second 02:30 is CET = 01:30 UTC.
    start, end = active_span(window, AUTUMN - timedelta(hours=2))
    assert (start, end) == (utc(2026, 10, 24, 23, 0), utc(2026, 10, 25, 1, 30))


def test_window_across_midnight_on_dst_night() -> None:
    window = weekly(["sat"], "23:00", "03:30", "Europe/Berlin")
    # Saturday 23:00 CET (22:00 UTC) to Sunday 03:30 CEST (01:30 UTC).
    start, end = active_span(window, utc(2026, 3, 28, 12, 0))
    assert (start, end) == (utc(2026, 3, 28, 22, 0), utc(2026, 3, 29, 1, 30))


def test_same_wall_clock_window_shifts_in_utc_with_dst() -> None:
    window = weekly(["mon"], "09:00", "10:00", "Europe/Berlin")
    winter = active_span(window, utc(2026, 1, 5))
    summer = active_span(window, utc(2026, 7, 6))
    assert winter[0].hour == 8
    assert summer[0].hour == 7


# --- one-off ----------------------------------------------------------------------------


def test_one_off_window_with_offsets() -> None:
    window = MaintenanceWindow.model_validate(
        {"start": "2026-12-24T08:00:00+01:00", "end": "2026-12-24T12:00:00+01:00"}
    )
    assert not window.active(utc(2026, 12, 24, 6, 59))
    assert window.active(utc(2026, 12, 24, 7, 0))
    assert not window.active(utc(2026, 12, 24, 11, 0))
    assert window.next_change(utc(2026, 12, 1)) == utc(2026, 12, 24, 7, 0)
    assert window.next_change(utc(2026, 12, 24, 8, 0)) == utc(2026, 12, 24, 11, 0)
    assert window.next_change(utc(2026, 12, 24, 11, 0)) is None


def test_naive_one_off_bounds_are_read_in_the_window_time_zone() -> None:
    window = MaintenanceWindow.model_validate(
        {"start": "2026-07-01T08:00:00", "end": "2026-07-01 10:00", "timezone": "Europe/Berlin"}
    )
    assert window.start == utc(2026, 7, 1, 6, 0)
    assert window.start is not None
    assert window.start.utcoffset() == timedelta(hours=2)  # kept as local time


def test_naive_one_off_bounds_in_the_repeated_hour_make_the_longest_window() -> None:
    window = MaintenanceWindow.model_validate(
        {"start": "2026-10-25T02:15", "end": "2026-10-25T02:45", "timezone": "Europe/Berlin"}
    )
    # start at the first 02:15 (CEST), end at the second 02:45 (CET)
    assert window.start == utc(2026, 10, 25, 0, 15)
    assert window.end == utc(2026, 10, 25, 1, 45)


# --- next_change ------------------------------------------------------------------------


def test_next_change_of_a_weekly_window() -> None:
    window = weekly(["sun"], "02:00", "04:00")
    assert window.next_change(utc(2026, 3, 4, 12, 0)) == utc(2026, 3, 8, 2, 0)
    assert window.next_change(utc(2026, 3, 8, 2, 0)) == utc(2026, 3, 8, 4, 0)
    assert window.next_change(utc(2026, 3, 8, 4, 0)) == utc(2026, 3, 15, 2, 0)


def test_adjacent_occurrences_are_one_stretch() -> None:
    window = weekly(["sun", "mon"], "00:00", "24:00")
    # Sunday 12:00: the window goes on through Monday, ends Tuesday 00:00.
    assert window.next_change(utc(2026, 3, 8, 12, 0)) == utc(2026, 3, 10, 0, 0)


def test_a_window_covering_the_whole_week_never_changes() -> None:
    window = weekly(["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "00:00", "24:00")
    assert window.active(utc(2026, 5, 5, 5, 5))
    assert window.next_change(utc(2026, 5, 5, 5, 5)) is None


# --- properties -------------------------------------------------------------------------

DAYS = st.lists(st.sampled_from([d.value for d in Weekday]), min_size=1, max_size=7)
HHMM = st.tuples(st.integers(0, 23), st.integers(0, 59)).map(lambda t: f"{t[0]:02d}:{t[1]:02d}")
INSTANT = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
)
ZONES = st.sampled_from(
    ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
)


def _wall_clock_active(days: list[str], start: str, end: str, local: datetime) -> bool:
    """Brute force on a wall clock without DST: minute of the week in intervals."""
    week = 7 * 1440
    minute = local.weekday() * 1440 + local.hour * 60 + local.minute + local.second / 60
    s = int(start[:2]) * 60 + int(start[3:])
    e = int(end[:2]) * 60 + int(end[3:])
    length = (e - s) % 1440
    for day in {Weekday(d).number for d in days}:
        begin = day * 1440 + s
        for shift in (-week, 0):
            if begin + shift <= minute < begin + shift + length:
                return True
    return False


@given(days=DAYS, start=HHMM, end=HHMM, at=INSTANT)
def test_active_agrees_with_brute_force_in_utc(
    days: list[str], start: str, end: str, at: datetime
) -> None:
    if start == end:
        return
    window = weekly(days, start, end)
    assert window.active(at) == _wall_clock_active(days, start, end, at)


@given(days=DAYS, start=HHMM, end=HHMM, at=INSTANT, tz=ZONES)
def test_active_follows_the_wall_clock_away_from_dst_changes(
    days: list[str], start: str, end: str, at: datetime, tz: str
) -> None:
    if start == end:
        return
    zone = ZoneInfo(tz)
    offsets = {(at + timedelta(hours=h)).astimezone(zone).utcoffset() for h in range(-27, 28)}
    if len(offsets) != 1:
        return  # a DST change nearby: covered by the explicit tests above
    window = weekly(days, start, end, tz)
    assert window.active(at) == _wall_clock_active(days, start, end, at.astimezone(zone))


@settings(max_examples=60, deadline=None)
@given(days=DAYS, start=HHMM, end=HHMM, at=INSTANT, tz=ZONES)
def test_next_change_is_where_active_first_flips(
    days: list[str], start: str, end: str, at: datetime, tz: str
) -> None:
    if start == end:
        return
    window = weekly(days, start, end, tz)
    change = window.next_change(at)
    now = window.active(at)
    if change is None:
        assert len(set(days)) == 7
        return
    assert change > at
    assert window.active(change) != now
    # constant until then, sampled every 20 minutes and just before the change
    probe = at
    while probe < change:
        assert window.active(probe) == now
        probe += timedelta(minutes=20)
    assert window.active(change - timedelta(microseconds=1)) == now


@given(
    start=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)),
    minutes=st.integers(1, 60 * 24 * 10),
    tz=ZONES,
    at=INSTANT,
)
def test_one_off_active_is_start_inclusive_end_exclusive(
    start: datetime, minutes: int, tz: str, at: datetime
) -> None:
    end = start + timedelta(minutes=minutes)
    window = MaintenanceWindow.model_validate({"start": start, "end": end, "timezone": tz})
    assert window.start is not None
    assert window.end is not None
    assert window.start < window.end
    assert window.active(at) == (window.start <= at < window.end)
    assert window.active(window.start)
    assert not window.active(window.end)
