"""Event-time windows and the watermark that closes them.

Times are Unix epoch seconds. Window kinds:
- `Tumbling(size)`: `1m`, `5m`, `1h`; aligned to the epoch (UTC).
- `BusinessDay(tz)`: `1d`, local midnight to midnight in the business time zone, so 23 or 25 hours
  long on DST change days.
- `CalendarMonth(tz)`: `1mo`, the local calendar month.

The watermark follows the newest event time less the largest *arrival lag* of the active sources
(the envelope's `source`) and a fixed delay; a window *closes* (its value can be shown) when the
watermark reaches its end, and it still accepts events until the watermark passes its end plus
the allowed lateness. See `Watermark`.
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
(~60 bytes each) and can only move the watermark forward."""


class Watermark:
    """Event-time progress of one stream (one source partition), judged per source by its lag.

    For each source it keeps its newest event time and that event's *arrival lag*: how far
    behind the stream's newest event time (`max_event_time`) it was when the next event of
    another source arrived, `max_event_time - event_time` then (until then, how far it is behind
    `max_event_time` now: it holds windows at its own newest event time). A source is assumed to
    keep that lag while it is quiet, so it holds windows at `max_event_time - lag`: a publisher
    running minutes behind delivers its events minutes behind the others' and holds windows that
    far back (its events within the allowed lateness count instead of being late), while a rare
    but timely source (a rate every few hours, a survey answer) delivers close to the others and
    holds nothing back while it is quiet. The watermark is `max_event_time` less the largest lag
    of the active sources less `delay`, and never falls.

    Measured against the next event of another source, and not only the newest before, so
    that "a publisher's first event, then one stamped now by another source" finds the
    publisher behind, whichever came first. The price is on sparse streams: a source is judged
    as far behind as the gap to the next event of another source, so a stream with a few events
    a minute closes windows as late as the old rule did (the oldest active source's newest event
    less `delay`), never later: a source's lag never exceeds how far it is behind the newest.

    A source is *active* while its newest event time is at most `idle` seconds behind
    `max_event_time`; one further behind is forgotten until it sends again (an event that far
    behind on arrival holds nothing back). Lag and idleness are judged in event time and arrival
    order, not wall-clock time, so a replay of the same stream (`pulse backtest`, a changelog
    recovery) decides exactly as the live worker did.

    The cost: a source that falls further behind than its last lag (a timely publisher that
    stalls and then sends its backlog) finds windows already final for its events more than
    `delay` + `lateness` behind: they are `late`. Events older than their source's newest move
    nothing (a source's disorder is covered by the delay and the lateness).
    """

    __slots__ = (
        "_lag",
        "_low",
        "_pending",
        "delay",
        "idle",
        "lags",
        "lateness",
        "max_event_time",
        "sources",
        "value",
    )

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
        self.lags: dict[str, float] = {}
        """Arrival lag of each active source's newest event (the keys of `sources`)."""
        self.value = NO_WATERMARK
        """The watermark: the highest (`max_event_time` - largest lag - `delay`) so far. It
        never falls, so a window once final stays final (a source first seen behind it is
        late)."""
        self._pending: str | None = None
        """The source of the newest counted event: its lag is settled by the next event of
        another source (until then it is `max_event_time` - its newest event time)."""
        self._lag = 0.0
        """Largest lag among active sources."""
        self._low = NO_WATERMARK
        """Oldest newest-event-time among active sources (the next one to become idle)."""

    def observe(self, event_time: float, source: str = "") -> None:  # noqa: PLR0912 - per event, flat
        """Count an event of `source` at `event_time` (epoch seconds). Cheap unless a source
        becomes idle, the oldest one moves or the most-lagging one lags less, which need a scan
        of the (few) active sources."""
        sources = self.sources
        newest = sources.get(source)
        if newest is not None and event_time <= newest:
            return
        before = self.max_event_time
        if event_time > before:
            self.max_event_time = event_time
        elif event_time < before - self.idle:
            return  # idle on arrival: it holds nothing back
        if self._low < self.max_event_time - self.idle:
            self._rescan()
            newest = sources.get(source)
        lags = self.lags
        pending = self._pending
        if pending != source:
            self._pending = source
            if pending is not None and event_time > before:  # else its lag stays as it is
                lag = event_time - sources[pending]  # behind the newest, this event included
                lags[pending] = lag
                if lag > self._lag:  # noqa: PLR1730 - per event
                    self._lag = lag
        lag = before - event_time if before > event_time else 0.0
        old_lag = lags.get(source, 0.0)
        sources[source] = event_time
        lags[source] = lag
        if newest is None and len(sources) > MAX_SOURCES:
            behind = min(sources, key=sources.__getitem__)
            del sources[behind], lags[behind]
            self._rescan()
        elif newest == self._low or (old_lag == self._lag and lag < old_lag):
            self._rescan()
        else:
            if newest is None and (event_time < self._low or self._low == NO_WATERMARK):
                self._low = event_time
            if lag > self._lag:  # noqa: PLR1730 - per event
                self._lag = lag
        candidate = self.max_event_time - self._lag - self.delay
        if candidate > self.value:  # noqa: PLR1730 - per event
            self.value = candidate

    def _rescan(self) -> None:
        """Drop idle sources; find the oldest active one and the largest lag."""
        cutoff = self.max_event_time - self.idle
        sources, lags = self.sources, self.lags
        for source in [s for s, t in sources.items() if t < cutoff]:
            del sources[source], lags[source]
            if source == self._pending:
                self._pending = None
        self._low = min(sources.values()) if sources else NO_WATERMARK
        self._lag = max(lags.values()) if lags else 0.0

    def restore(
        self,
        max_event_time: float,
        sources: dict[str, float],
        value: float,
        lags: dict[str, float | None] | None = None,
    ) -> None:
        """Merge what a changelog record holds (absolute values, so merging twice is harmless).

        `lags` (see `lag_state`) maps each source to its lag, None for the source of the newest
        event, whose lag is still open. A record written before lags were kept has none: each
        source then lags by how far its newest event is behind the newest, which holds windows
        where the rule of that time (the oldest active source's newest event) held them."""
        self.max_event_time = max(self.max_event_time, max_event_time)
        for source, newest in sources.items():
            known = self.sources.get(source, NO_WATERMARK)
            behind = max(0.0, max_event_time - newest)
            lag = behind if lags is None else lags.get(source, behind)
            if newest > known or (newest == known and lag is not None):
                self.sources[source] = newest
                self.lags[source] = behind if lag is None else float(lag)
                if lag is None:
                    self._pending = source
                elif source == self._pending:
                    self._pending = None
        self.value = max(self.value, value)
        if len(self.sources) > MAX_SOURCES:
            for source in sorted(self.sources, key=self.sources.__getitem__)[:-MAX_SOURCES]:
                del self.sources[source], self.lags[source]
                if source == self._pending:
                    self._pending = None
        self._rescan()
        if self.sources:
            self.value = max(self.value, self.max_event_time - self._lag - self.delay)

    def lag_state(self) -> dict[str, float | None]:
        """Each active source's lag, None for the source of the newest event, whose lag waits
        for another source's event (what `restore` takes as `lags`)."""
        return {s: None if s == self._pending else lag for s, lag in self.lags.items()}

    def accepts(self, window_end: float) -> bool:
        """Whether a window ending at `window_end` still takes events."""
        return self.value < window_end + self.lateness
