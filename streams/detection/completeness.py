"""Data completeness: which sources (event types) have gone silent or fallen behind.

A source is stale when its newest event time is further behind the clock than it has ever
(recently) been quiet: `max(min_silence, factor x longest recent gap)`. The longest gap is learned
per source and forgets slowly (half-life `memory`), so a source that posts once a month (budgets)
is judged against a month and one that posts every second against `min_silence`. A source is
judged only after `min_events` events (nothing is known about it before).

The clock is event time (the watermark: a source lagging behind the others is stale) or, live,
wall-clock time once the worker is caught up and has had no records for a while (every source
silent is stale too; see `judging_clock`). The KPI alerts of series depending on a stale source
are held back by the caller; one `data_stale` alert per source is raised instead. Pure: stdlib
only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

MAX_OUTAGES = 4


@dataclass(slots=True)
class _Source:
    last: float
    events: int = 1
    longest: float = 0.0
    """Longest gap between events, decayed towards 0 with the configured half-life."""
    stale_since: float | None = None
    outages: list[tuple[float, float]] = field(default_factory=list)
    """Recent silences longer than allowed: (last event before, first event after)."""


@dataclass(frozen=True, slots=True)
class StaleChange:
    source: str
    state: Literal["opened", "resolved"]
    last_event: float
    """Event time of the source's newest event."""
    since: float
    """When it became stale (its last event plus the allowed silence)."""


def judging_clock(
    watermark: float, now: float, *, caught_up: bool, quiet_for: float, quiet: float, delay: float
) -> float:
    """The clock sources are judged against: the watermark, or wall-clock time less the
    watermark `delay` once every partition is read to its end and no record came for `quiet`
    seconds (`quiet_for` so far). Caught up alone is not enough: a publisher replaying history
    is caught up with between its sends, and every source would flap stale and back."""
    if caught_up and quiet_for >= quiet:
        return max(watermark, now - delay)
    return watermark


@dataclass(slots=True)
class Completeness:
    min_silence: float = 300.0
    factor: float = 3.0
    min_events: int = 20
    memory: float = 7 * 86_400.0
    ignored: frozenset[str] = frozenset({"fx_rate"})
    """Sources never judged: reference data whose silence changes no KPI."""
    _sources: dict[str, _Source] = field(default_factory=dict)

    def observe(self, source: str, event_time: float) -> None:
        """Record an event of `source` (any order; only newer times move it forward)."""
        state = self._sources.get(source)
        if state is None:
            self._sources[source] = _Source(event_time)
            return
        gap = event_time - state.last
        if gap <= 0:
            return
        state.events += 1
        decay = 0.5 ** (gap / self.memory)
        # A gap longer than the allowed silence was an outage, not a pattern to learn.
        outage = state.events > self.min_events and gap > self.allowed(source)
        state.longest = state.longest * decay if outage else max(gap, state.longest * decay)
        if outage:
            state.outages.append((state.last, event_time))
            del state.outages[:-MAX_OUTAGES]
        state.last = event_time

    def allowed(self, source: str) -> float:
        """Seconds of silence after which `source` is stale."""
        state = self._sources[source]
        return max(self.min_silence, self.factor * state.longest)

    def check(self, clock: float) -> list[StaleChange]:
        """Compare every judged source with `clock`; return the changes since the last check."""
        changes: list[StaleChange] = []
        if not math.isfinite(clock):
            return changes
        for name, state in sorted(self._sources.items()):
            if name in self.ignored or state.events < self.min_events:
                continue
            limit = state.last + self.allowed(name)
            if clock > limit and state.stale_since is None:
                state.stale_since = limit
                changes.append(StaleChange(name, "opened", state.last, limit))
            elif clock <= limit and state.stale_since is not None:
                changes.append(StaleChange(name, "resolved", state.last, state.stale_since))
                state.stale_since = None
        return changes

    def judged(self) -> list[str]:
        """Sources seen often enough to be judged."""
        return sorted(
            n
            for n, s in self._sources.items()
            if n not in self.ignored and s.events >= self.min_events
        )

    def stale(self) -> dict[str, float]:
        """Stale sources and since when."""
        return {
            name: s.stale_since for name, s in self._sources.items() if s.stale_since is not None
        }

    def incomplete(self, source: str, start: float, end: float) -> bool:
        """True when `source` was silent beyond its allowance during [start, end) or is now."""
        state = self._sources.get(source)
        if state is None or source in self.ignored:
            return False
        if state.stale_since is not None:
            return True
        return any(before < end and after > start for before, after in state.outages)
