"""Event-time windows and the watermark that closes them.

Times are Unix epoch seconds. Window kinds:
- `Tumbling(size)`: `1m`, `5m`, `1h`; aligned to the epoch (UTC).
- `BusinessDay(tz)`: `1d`, local midnight to midnight in the business time zone, so 23 or 25 hours
  long on DST change days.
- `CalendarMonth(tz)`: `1mo`, the local calendar month.

The watermark follows the slowest *active* source (the envelope's `source`) minus a fixed delay; a
window *closes* (its value can be shown) when the watermark reaches its end, and it still accepts
events until the watermark passes its end plus the allowed lateness. See `Watermark`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

NO_WATERMARK = -math.inf


class WindowKind(Protocol):
    name: str

    def start_of(self, timestamp: float) -> int: ...

    def end_of(self, start: int) -> int: ...


def size_label(seconds: int) -> str:
    """`60` → `1m`, `3600` → `1h`: the `window` label of a fixed window size."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True, slots=True)
class Tumbling:
    """Fixed-size windows aligned to the epoch (so 60 s windows start on the minute, UTC)."""

    size: int

    @property
    def name(self) -> str:
        return size_label(self.size)

    def start_of(self, timestamp: float) -> int:
        return int(timestamp // self.size) * self.size

    def end_of(self, start: int) -> int:
        return start + self.size

    def last_closed_start(self, watermark: float) -> int | None:
        """Start of the newest window whose end is at or before `watermark`, if any."""
        if watermark == NO_WATERMARK:
            return None
        return int(watermark // self.size) * self.size - self.size


@dataclass(slots=True)
class _LocalPeriods:
    """Local calendar periods (days or months) with a one-entry cache: events mostly arrive in
    order, so the period of the previous event usually holds the next one too."""

    tz: ZoneInfo
    months: bool
    _cached: tuple[float, float] = (math.inf, -math.inf)

    def start_of(self, timestamp: float) -> int:
        lo, hi = self._cached
        if lo <= timestamp < hi:
            return int(lo)
        local = datetime.fromtimestamp(timestamp, self.tz)
        start = datetime(local.year, local.month, 1 if self.months else local.day, tzinfo=self.tz)
        lo = start.timestamp()
        self._cached = (lo, self._next(start).timestamp())
        return int(lo)

    def end_of(self, start: int) -> int:
        local = datetime.fromtimestamp(start, self.tz)
        return int(self._next(local.replace(hour=0, minute=0, second=0)).timestamp())

    def shift(self, start: int, periods: int) -> int:
        """The start of the period `periods` away (negative: earlier)."""
        local = datetime.fromtimestamp(start, self.tz)
        if self.months:
            index = local.year * 12 + local.month - 1 + periods
            moved = datetime(index // 12, index % 12 + 1, 1, tzinfo=self.tz)
        else:
            day = local.date() + timedelta(days=periods)
            moved = datetime(day.year, day.month, day.day, tzinfo=self.tz)
        return int(moved.timestamp())

    def _next(self, start: datetime) -> datetime:
        if self.months:
            year, month = divmod(start.year * 12 + start.month, 12)
            return datetime(year, month + 1, 1, tzinfo=self.tz)
        day = start.date() + timedelta(days=1)
        return datetime(day.year, day.month, day.day, tzinfo=self.tz)


@dataclass(slots=True)
class BusinessDay:
    """`1d`: the business day in `tz` (DST-correct)."""

    tz: ZoneInfo
    name: str = "1d"
    _periods: _LocalPeriods = field(init=False)

    def __post_init__(self) -> None:
        self._periods = _LocalPeriods(self.tz, months=False)

    def start_of(self, timestamp: float) -> int:
        return self._periods.start_of(timestamp)

    def end_of(self, start: int) -> int:
        return self._periods.end_of(start)

    def shift(self, start: int, days: int) -> int:
        return self._periods.shift(start, days)


@dataclass(slots=True)
class CalendarMonth:
    """`1mo`: the calendar month in `tz`."""

    tz: ZoneInfo
    name: str = "1mo"
    _periods: _LocalPeriods = field(init=False)

    def __post_init__(self) -> None:
        self._periods = _LocalPeriods(self.tz, months=True)

    def start_of(self, timestamp: float) -> int:
        return self._periods.start_of(timestamp)

    def end_of(self, start: int) -> int:
        return self._periods.end_of(start)

    def of_period(self, period: str) -> int:
        """Start of the month named `YYYY-MM`. Raises ValueError for a month whose start or end
        a `datetime` cannot hold ("0000-01", "9999-12"): raised here, while the one event naming
        it is handled, it is that event's dead letter; found only when the month's window
        closes, it stopped the worker on every restart."""
        year, month = (int(part) for part in period.split("-"))
        start = int(datetime(year, month, 1, tzinfo=self.tz).timestamp())
        self.end_of(start)
        return start


DEFAULT_SOURCE_IDLE_SECONDS = 300.0
"""Event-time seconds a source may trail the newest source of its partition and still hold the
watermark back (see `Watermark`)."""
MAX_SOURCES = 256
"""Active sources remembered per stream. Sources are publishing systems (dozens); past this the
most-behind one is forgotten, so a flood of made-up names bounds memory and the changelog header
(~40 bytes each) and can only move the watermark forward."""


class Watermark:
    """Event-time progress of one stream (one source partition), per source.

    For each source it keeps the newest event time. A source is *active* while its newest event
    time is at most `idle` seconds behind the newest of all sources (`max_event_time`); the
    watermark is the oldest active source's newest event time minus `delay`, and never falls. So
    a publisher running minutes behind holds windows open for its events (its events within the
    allowed lateness count instead of being late), while one that stopped holds them for at most
    `idle` seconds of event time, after which it is forgotten. Idleness is judged in event time,
    not wall-clock time, so a replay of the same stream (`pulse backtest`, a changelog recovery)
    decides exactly as the live worker did.

    The cost: a source that sends an event and falls silent holds the stream's windows for up to
    `idle` seconds of event time.
    """

    __slots__ = ("_low", "delay", "idle", "lateness", "max_event_time", "sources", "value")

    def __init__(
        self, delay: float, lateness: float, idle: float = DEFAULT_SOURCE_IDLE_SECONDS
    ) -> None:
        self.delay = delay
        self.lateness = lateness
        self.idle = idle
        self.max_event_time = NO_WATERMARK
        """Newest event time of all sources."""
        self.sources: dict[str, float] = {}
        """Newest event time per active source (idle ones are dropped)."""
        self.value = NO_WATERMARK
        """The watermark: the highest (oldest active source - `delay`) so far. It never falls,
        so a window once final stays final (a source first seen behind it is late)."""
        self._low = NO_WATERMARK
        """Oldest newest-event-time among active sources."""

    def observe(self, event_time: float, source: str = "") -> None:
        """Count an event of `source` at `event_time` (epoch seconds). Cheap unless it moves the
        oldest active source, which needs a scan of the (few) active sources."""
        sources = self.sources
        newest = sources.get(source)
        if newest is not None and event_time <= newest:
            return
        if event_time > self.max_event_time:  # noqa: PLR1730 - per event; a max() call costs more
            self.max_event_time = event_time
        if event_time < self.max_event_time - self.idle:
            return  # idle on arrival: it holds nothing back
        sources[source] = event_time
        if newest is None:
            if len(sources) > MAX_SOURCES:
                del sources[min(sources, key=sources.__getitem__)]
                self._rescan()
            elif event_time < self._low or self._low == NO_WATERMARK:
                self._low = event_time
                self._advance()
            elif self._low < self.max_event_time - self.idle:
                self._rescan()
            return
        if newest == self._low or self._low < self.max_event_time - self.idle:
            self._rescan()

    def _rescan(self) -> None:
        """Drop idle sources and find the oldest active one."""
        cutoff = self.max_event_time - self.idle
        sources = self.sources
        idle = [s for s, t in sources.items() if t < cutoff]
        for source in idle:
            del sources[source]
        self._low = min(sources.values()) if sources else NO_WATERMARK
        self._advance()

    def _advance(self) -> None:
        candidate = self._low - self.delay
        self.value = max(self.value, candidate)

    def restore(self, max_event_time: float, sources: dict[str, float], value: float) -> None:
        """Merge what a changelog record holds (absolute values, so merging twice is harmless)."""
        self.max_event_time = max(self.max_event_time, max_event_time)
        for source, newest in sources.items():
            if newest > self.sources.get(source, NO_WATERMARK):
                self.sources[source] = newest
        self.value = max(self.value, value)
        if len(self.sources) > MAX_SOURCES:
            for source in sorted(self.sources, key=self.sources.__getitem__)[:-MAX_SOURCES]:
                del self.sources[source]
        self._rescan()

    def accepts(self, window_end: float) -> bool:
        """Whether a window ending at `window_end` still takes events."""
        return self.value < window_end + self.lateness
