"""Tumbling window assignment and the watermark that closes windows, at their boundaries."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from streams.core import NO_WATERMARK, BusinessDay, CalendarMonth, Tumbling, Watermark

T0 = 1_709_294_400  # 2024-03-01T12:00:00Z = 60 * 28_488_240 = 3600 * 474_804
MINUTE = Tumbling(60)


@pytest.mark.parametrize(
    ("timestamp", "expected_start"),
    [
        (0, 0),
        (59.999999, 0),  # 1 µs before the first boundary
        (60, 60),  # exactly on the boundary: belongs to the window that starts there
        (T0, T0),  # T0 is a whole minute
        (T0 - 0.000001, T0 - 60),  # 1 µs before T0 is the last instant of the previous minute
        (T0 + 59.999999, T0),
        (T0 + 60, T0 + 60),
    ],
)
def test_start_of_a_minute_window(timestamp, expected_start):
    assert MINUTE.start_of(timestamp) == expected_start


def test_start_of_from_a_parsed_datetime_one_microsecond_before_noon():
    # 11:59:59.999999 on 2024-03-01 is in the 11:59 window, which starts at T0 - 60.
    timestamp = datetime(2024, 3, 1, 11, 59, 59, 999999, tzinfo=UTC).timestamp()

    assert MINUTE.start_of(timestamp) == T0 - 60


def test_start_of_an_hour_window():
    hour = Tumbling(3600)

    assert hour.start_of(T0 + 3599.5) == T0  # T0 is a whole hour
    assert hour.start_of(T0 + 3600) == T0 + 3600
    assert hour.start_of(T0 - 1) == T0 - 3600


def test_no_window_is_closed_before_any_watermark():
    assert MINUTE.last_closed_start(NO_WATERMARK) is None


@pytest.mark.parametrize(
    ("watermark", "expected_start"),
    [
        # [60, 120) ends at 120 <= 120: closed exactly when the watermark reaches its end.
        (120, 60),
        # 1 µs earlier [60, 120) is still open; the newest closed one is [0, 60).
        (119.999999, 0),
        # [T0, T0+60) ends at T0+60 <= T0+65; [T0+60, T0+120) ends at T0+120 > T0+65.
        (T0 + 65, T0),
        (T0 + 120, T0 + 60),
    ],
)
def test_last_closed_start(watermark, expected_start):
    assert MINUTE.last_closed_start(watermark) == expected_start


def test_a_fresh_watermark_accepts_every_window():
    mark = Watermark(delay=5, lateness=30)

    assert mark.value == NO_WATERMARK
    assert mark.accepts(60)


def test_watermark_is_the_highest_event_time_minus_the_delay():
    mark = Watermark(delay=5, lateness=30)
    mark.observe(100)
    mark.observe(40)  # an older event does not move it back

    assert mark.max_event_time == 100
    assert mark.value == 95  # 100 - 5


@pytest.mark.parametrize(
    ("max_event_time", "accepted"),
    [
        # Window [0, 60), delay 5, lateness 30: accepted while max_event_time - 5 < 60 + 30 = 90,
        # i.e. while max_event_time < 95.
        (64, True),  # watermark 59: the window has not even closed
        (94.999, True),  # watermark 89.999 < 90
        (95, False),  # watermark 90, not < 90: closed for good
        (96, False),  # watermark 91
    ],
)
def test_a_window_takes_events_until_the_watermark_passes_end_plus_lateness(
    max_event_time, accepted
):
    mark = Watermark(delay=5, lateness=30)
    mark.observe(max_event_time)

    assert mark.accepts(60) is accepted


def test_the_next_window_is_still_open_when_the_previous_one_stops_accepting():
    mark = Watermark(delay=5, lateness=30)
    mark.observe(95)  # watermark 90

    assert not mark.accepts(60)  # [0, 60): 90 < 60 + 30 is false
    assert mark.accepts(120)  # [60, 120): 90 < 120 + 30


# --- business days and months in a time zone with DST ---------------------------------------

BERLIN = ZoneInfo("Europe/Berlin")


def utc(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_the_business_day_is_local_midnight_to_midnight_and_25_hours_on_dst_end() -> None:
    day = BusinessDay(BERLIN)
    # 2026-10-25: clocks go back 03:00 CEST -> 02:00 CET; the day runs 22:00Z to 23:00Z next day.
    start = day.start_of(utc("2026-10-25T12:00:00+00:00"))
    assert start == utc("2026-10-24T22:00:00+00:00")
    assert day.end_of(start) - start == 25 * 3600
    assert day.start_of(utc("2026-10-25T22:59:59+00:00")) == start  # 23:59:59 CET
    assert day.start_of(utc("2026-10-25T23:00:00+00:00")) == utc("2026-10-25T23:00:00+00:00")
    # 2026-03-29: clocks go forward; that day is 23 hours long.
    spring = day.start_of(utc("2026-03-29T12:00:00+00:00"))
    assert day.end_of(spring) - spring == 23 * 3600
    assert day.shift(start, -30) == utc("2026-09-24T22:00:00+00:00")  # still CEST then


def test_the_calendar_month_follows_the_business_time_zone() -> None:
    month = CalendarMonth(BERLIN)
    october = utc("2026-09-30T22:00:00+00:00")  # 2026-10-01 00:00 CEST
    assert month.start_of(utc("2026-10-31T22:59:59+00:00")) == october  # 23:59:59 CET
    assert month.end_of(october) == utc("2026-10-31T23:00:00+00:00")
    assert month.of_period("2026-10") == october


@pytest.mark.parametrize("period", ["0000-01", "9999-12"])
def test_a_month_a_datetime_cannot_hold_is_refused_when_named(period: str) -> None:
    # Refused while its one event is handled (a dead letter), not when its window closes
    # (which stopped the worker on every restart: issue 17).
    with pytest.raises(ValueError, match="out of range"):
        CalendarMonth(UTC).of_period(period)


def test_the_last_months_a_datetime_can_hold_are_accepted() -> None:
    month = CalendarMonth(UTC)
    november = month.of_period("9999-11")
    assert month.end_of(november) == int(datetime(9999, 12, 1, tzinfo=UTC).timestamp())
    assert month.of_period("0001-01") == int(datetime(1, 1, 1, tzinfo=UTC).timestamp())
