"""Everything one source partition contributes: watermark, dedupe memory, measures and joins.

`apply` counts one event (the compiled catalog says which measures it feeds); `checkpoint`
returns what changed since the last checkpoint as one changelog record (absolute values, so
replaying a record twice is harmless), closed by the source offset it covers; `restore` applies
such records in order. This is the write-ahead log of DESIGN.md principle 5: one write per
changed key per batch, not per event.

Over 400 lines: what one event does (`apply`, its batch and its late path) and the changelog
format of the state it changes are read together; the rules they apply live in their own modules
(`dedupe`, `late_flows`, `restatements`, `join`, `measures`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

from schemas import Envelope, FxRate
from streams.core.cardinality import CardinalityGuard
from streams.core.compiler import CompiledCatalog, Contribution
from streams.core.dedupe import Deduper
from streams.core.fiscal import FiscalWindow, fiscal_windows, period_windows
from streams.core.join import TimeJoin
from streams.core.late_flows import KeptUntil, late_targets, period_flows
from streams.core.log_records import RECORD_BYTES, spread
from streams.core.measures import Latest, LatestBy, MeasureStore
from streams.core.money import FxTable
from streams.core.restatements import DEFAULT_RESTATEMENT_DAYS, check_period
from streams.core.windows import NO_WATERMARK, BusinessDay, CalendarMonth, Tumbling, Watermark
from streams.errors import ChangelogError, InvalidEvent

CHECKPOINT_VERSION = 3
DAY_RETENTION_DAYS = 32
"""Business days kept as buckets: a 30-day trailing window plus margin; older ones fold."""
Group = tuple[str, tuple[str, ...], int, int]
"""(measure, dimensions, minute, business day): what `PartitionState.flush` adds, to the
measure's storage windows (a flat tuple: it is hashed once per event and measure)."""
JOIN_TTL_SECONDS = 30 * 86400.0
JOIN_MAX_ENTRIES = 1_000_000
"""Per partition (`Settings.join_max_entries`): at 500 events/s an order starts every ~3 ms, so
this bound, not the 30-day TTL, is what limits the join's memory under load."""


@dataclass(frozen=True, slots=True)
class Windows:
    """The window kinds of the catalog, shared by every partition of a worker."""

    minute: Tumbling
    flow: dict[str, Tumbling | BusinessDay]
    day: BusinessDay
    month: CalendarMonth
    restatement: float = DEFAULT_RESTATEMENT_DAYS * 86400.0
    """Seconds after a period window is final (its end plus the allowed lateness) during which
    an event of that period restates it (`streams.core.restatements`); the window is kept so."""
    fiscal: Mapping[str, FiscalWindow] = field(default_factory=dict)
    """`fp`, `fq`, `fytd` (and `fy`) of `PULSE_FISCAL_CALENDAR`; empty when it is off."""

    @classmethod
    def for_timezone(
        cls, tz: Any, restatement_days: float = DEFAULT_RESTATEMENT_DAYS, fiscal: str = ""
    ) -> Windows:
        """Raises `ConfigError` naming `PULSE_FISCAL_CALENDAR` for a `fiscal` it cannot read."""
        day = BusinessDay(tz)
        minute = Tumbling(60)
        return cls(
            minute=minute,
            flow={"1m": minute, "5m": Tumbling(300), "1h": Tumbling(3600), "1d": day},
            day=day,
            month=CalendarMonth(tz),
            restatement=restatement_days * 86400.0,
            fiscal=fiscal_windows(fiscal, tz),
        )

    def kind(self, name: str) -> Tumbling | BusinessDay | CalendarMonth | FiscalWindow:
        if name == "1mo":
            return self.month
        flow = self.flow.get(name)
        return self.fiscal[name] if flow is None else flow

    def period_windows(self, period: str) -> list[tuple[str, int, int]]:
        """The period windows (window, start, end) a `budget_set.period` names (see
        `streams.core.fiscal.period_windows`)."""
        return period_windows(self.month, self.fiscal.get("fp"), period)


class PartitionState:
    def __init__(
        self,
        catalog: CompiledCatalog,
        windows: Windows,
        *,
        watermark: Watermark,
        fx: FxTable,
        dedupe_max_entries: int,
        retained_windows: int,
        guard: CardinalityGuard | None = None,
        join_max_entries: int = JOIN_MAX_ENTRIES,
    ) -> None:
        self.catalog = catalog
        self.guard = guard
        self.windows = windows
        self.watermark = watermark
        self.fx = fx
        self.retained_windows = retained_windows
        self.seen = Deduper(dedupe_max_entries)
        self.store = MeasureStore()
        self.join = TimeJoin(JOIN_TTL_SECONDS, join_max_entries)
        self.first_event_time = math.inf
        self.newest: dict[str, float] = {}
        """Newest event time per event type (what completeness judges sources by)."""
        self.next_offset: int | None = None
        self.unread = False
        """Set by its owner while the partition has no counted event yet but may still hold
        unread ones (a backlog at assignment): it then holds back the worker's watermark, since
        its events may be the oldest of all. Cleared once it has data or has been read to its
        end. A partition no one flags (offline use) never holds anything back."""
        self._new_ids: list[tuple[str, int]] = []
        self._pending: dict[Group, Decimal | int] | None = None
        """Sums and counts of the batch under way (`batch`), not yet in the store."""
        self._evicted_at_checkpoint = 0
        self._new_rates: list[tuple[str, float, str]] = []
        self._rates_to_share: list[tuple[str, float, str]] = []
        self._period_fields = {
            t: c.measure.period_field
            for t, cs in catalog.by_event.items()
            for c in cs
            if c.measure.period_field is not None
        }
        """Event types that name the period they count in (budget_set): checked against the
        restatement horizon before they count."""
        self._period_flows = period_flows(catalog)
        """Event types whose sums are kept in period windows (expense_posted): late, they may
        still restate a period (`streams.core.late_flows`)."""
        self._kept_ids = {
            t: KeptUntil(
                windows, tuple(sorted({w for _, ws in cs for w in ws})), watermark.lateness
            )
            for t, cs in self._period_flows.items()
        }
        """Their ids are remembered while their periods can be restated: the dedupe bucket."""

    @property
    def has_data(self) -> bool:
        return self.watermark.max_event_time != NO_WATERMARK

    def apply(  # noqa: PLR0912, PLR0915 - flat on purpose: the per-event hot path, measured
        self, event: Envelope, now: float = math.inf, occurred: float | None = None
    ) -> None:
        """Count one valid event. Raises `InvalidEvent` for a duplicate, a late event or an
        unknown currency; the state is unchanged then.

        `now` (wall-clock epoch seconds) caps how far the event moves the watermark: an event
        stamped in the future by a skewed clock still counts in its windows, but does not make
        everyone else's events late. Offline replays leave it unbounded. `occurred` is
        `event.occurred_at` in epoch seconds when the caller has it (`decode_timed`).

        Between `batch()` and `flush()`, sums and counts into minutes and business days wait in
        a batch-local table, one entry per (measure, dimensions, minute, day), and reach the
        store at `flush()`: the store is then touched once per group, not once per event and
        window. Decimal sums are exact, so the totals are those of adding one by one.
        """
        event_id = event.event_id
        if event_id in self.seen.ids:
            raise InvalidEvent("duplicate", f"event_id {event_id} was already counted")
        if occurred is None:
            occurred = event.occurred_at.timestamp()
        minute = int(occurred // 60) * 60
        mark = self.watermark
        if not mark.accepts(minute + 60):
            self._apply_late(event, occurred, minute)
            return
        catalog = self.catalog
        event_type = event.type
        period_field = self._period_fields.get(event_type)
        if period_field is not None:  # before anything changes: beyond the horizon it is late
            windows = self.windows
            check_period(
                windows.period_windows(getattr(event, period_field)),
                getattr(event, period_field),
                lateness=mark.lateness,
                horizon=windows.restatement,
                watermark=max(mark.value, occurred),  # judged by its own time too
            )
        converted: Decimal | None = None
        if event_type in catalog.money_types:
            # Converted once, before anything changes, so an unknown currency leaves no trace.
            converted = self.fx.to_reporting(event.amount, event.currency, occurred)  # type: ignore[attr-defined]
        kept = self._kept_ids.get(event_type)
        bucket = minute if kept is None else kept(occurred)
        self.seen.add(event_id, bucket)
        self._new_ids.append((event_id, bucket))
        mark.observe(occurred if occurred < now else now, event.source)
        if occurred < self.first_event_time:  # noqa: PLR1730 - per event; min() costs more
            self.first_event_time = occurred
        if occurred > self.newest.get(event_type, 0.0):
            self.newest[event_type] = occurred
        if event_type == "fx_rate":  # not isinstance: pydantic's metaclass check is Python
            self._record_rate(cast(FxRate, event), occurred)
            return
        # The hot path, kept flat: sums and counts into their minute and business-day buckets.
        add = self.store.add
        guard = self.guard
        pending = self._pending
        day: int | None = None
        for c in catalog.by_event.get(event_type, ()):
            if c.keep is not None and not c.keep(event):
                continue
            if not c.additive:
                self._contribute(c, event, occurred, converted)
                continue
            dims = c.dims(event)
            if guard is not None:
                dims = guard.fold(c.measure.dims, dims, event)
            value: Decimal | int
            if c.value is None:
                value = 1
            elif converted is not None and c.money:
                value = converted if c.sign > 0 else -converted
            else:
                value = Decimal(c.value(event)) * c.sign
            if pending is not None and c.batched:
                if not c.daily:
                    group = (c.name, dims, minute, 0)
                else:
                    if day is None:
                        day = self.windows.day.start_of(occurred)
                    group = (c.name, dims, minute, day)
                pending[group] = pending.get(group, 0) + value
                continue
            key = (c.name, dims)
            for name in c.windows:
                if name == "1m":
                    add((name, minute), key, value)
                elif name == "1d":
                    if day is None:
                        day = self.windows.day.start_of(occurred)
                    add((name, day), key, value)
                else:
                    add((name, self.windows.kind(name).start_of(occurred)), key, value)
        for measure in catalog.join_starts.get(event_type, ()):
            key_value = getattr(event, measure.join.key)  # type: ignore[union-attr]
            for name, end, dims, seconds in self.join.start(key_value, occurred):
                self._add_sample(name, end, dims, seconds, catalog.storage_windows[name])

    def _apply_late(self, event: Envelope, occurred: float, minute: int) -> None:
        """An event whose 1m window is final: counted only in the period buckets it feeds that
        can still be restated, which are marked restated when final (`streams.core.late_flows`);
        else raises `InvalidEvent("late")` saying why. It moves no watermark and counts in no
        minute, hour or day. The state is unchanged when it raises."""
        mark = self.watermark
        windows = self.windows
        event_type = event.type
        targets = late_targets(
            self._period_flows,
            windows,
            event,
            occurred,
            lateness=mark.lateness,
            watermark=mark.value,
            too_late=f"its 1m window starting {minute} is final; watermark {mark.value:.3f}",
        )
        converted: Decimal | None = None
        if event_type in self.catalog.money_types:
            converted = self.fx.to_reporting(event.amount, event.currency, occurred)  # type: ignore[attr-defined]
        bucket = self._kept_ids[event_type](occurred)
        self.seen.add(event.event_id, bucket)
        self._new_ids.append((event.event_id, bucket))
        for target in targets:
            c = target.contribution
            dims = c.dims(event)
            if self.guard is not None:
                dims = self.guard.fold(c.measure.dims, dims, event)
            value: Decimal | int
            if c.value is None:
                value = 1
            elif converted is not None and c.money:
                value = converted if c.sign > 0 else -converted
            else:
                value = Decimal(c.value(event)) * c.sign
            self.store.add((target.window, target.start), (c.name, dims), value)
            if target.end + mark.lateness <= mark.value:
                self.store.restated.add((target.window, target.start))  # the finalizer restates

    def batch(self) -> None:
        """Start a batch: `apply` gathers sums and counts until `flush` (see `apply`)."""
        if self._pending is None:
            self._pending = {}

    def flush(self) -> None:
        """Add what the batch gathered to the store (each group once per window); end the
        batch. Anything that reads the store (checkpoints, finalizers) must come after."""
        pending, self._pending = self._pending, None
        if not pending:
            return
        add = self.store.add
        windows = self.catalog.storage_windows  # a batched contribution's `windows`
        for (measure, dims, minute, day), value in pending.items():
            key = (measure, dims)
            for name in windows[measure]:
                add((name, minute if name == "1m" else day), key, value)

    def _contribute(
        self, c: Contribution, event: Envelope, occurred: float, converted: Decimal | None
    ) -> None:
        """The measures that are not plain sums: quantiles (a join) and latest values."""
        measure = c.measure
        origin = dims = c.dims(event)
        if self.guard is not None:
            dims = self.guard.fold(measure.dims, dims, event)
        if measure.kind == "quantile":
            self._join_end(measure.name, event, occurred, dims, c.windows)
            return
        period = getattr(event, measure.period_field or "")
        mark = self.watermark
        latest = Latest(occurred, converted if converted is not None else Decimal(0))
        # Folded into `other`: one register per original combination, so the budgets add up.
        register = latest if dims == origin else LatestBy((("|".join(origin), latest),))
        for window, start, end in self.windows.period_windows(period):
            if end + mark.lateness <= mark.value:
                self.store.restated.add((window, start))  # final already: the finalizer restates it
            self.store.put_latest((window, start), (measure.name, dims), register)

    def _record_rate(self, event: FxRate, occurred: float) -> None:
        if event.quote_currency == self.fx.reporting_currency:
            self.fx.set_rate(event.currency, occurred, event.rate)
            rate = (event.currency, occurred, str(event.rate))
            self._new_rates.append(rate)
            self._rates_to_share.append(rate)

    def shared_rates(self) -> list[tuple[str, float, str]]:
        """Rates counted since the last call, as (currency, effective from, rate): the worker
        forwards them to every other worker (`streams.kafka.rates`)."""
        rates, self._rates_to_share = self._rates_to_share, []
        return rates

    def _join_end(
        self,
        measure: str,
        event: Envelope,
        at: float,
        dims: tuple[str, ...],
        windows: tuple[str, ...],
    ) -> None:
        join = self.catalog.measures[measure].join
        assert join is not None
        seconds = self.join.end(measure, getattr(event, join.key), at, dims)
        if seconds is not None:
            self._add_sample(measure, at, dims, seconds, windows)

    def _add_sample(
        self,
        measure: str,
        at: float,
        dims: tuple[str, ...],
        seconds: float,
        windows: tuple[str, ...],
    ) -> None:
        if not self.watermark.accepts(self.windows.minute.start_of(at) + 60):
            return  # the end event's windows are final: too late to add its duration
        for name in windows:
            self.store.add_sample(
                (name, self.windows.kind(name).start_of(at)), (measure, dims), seconds
            )

    def expire(self, shown_watermark: float) -> None:
        """Drop ids, join entries and windows that can no longer change and are past retention.

        `shown_watermark` is the watermark the worker exports by (`WorkerState.watermark`, the
        slowest owned partition): windows are kept for it, not for this partition alone, which
        may run far ahead after a backlog.
        """
        if not self.has_data:
            return
        mark = self.watermark.value
        lateness = self.watermark.lateness
        final = self.windows.minute.start_of(mark - lateness)  # minutes before it are final
        self.seen.expire_before(final)
        self.join.expire_before(mark, ends_final_before=final)  # as `_add_sample` would drop them
        horizon = min(shown_watermark, mark)
        hour = self.windows.flow["1h"]
        keep_minutes = max(self.retained_windows * 60, 3600)
        for window, start in list(self.store.buckets):
            if window == "1m":
                # Minutes also make up their 5m and 1h windows: keep them while the hour that
                # holds them can still change or is the one shown, and until it is final for
                # the worker (`horizon`), which publishes it then: a partition running ahead
                # by more than `keep_minutes` must not drop what the slowest one still needs.
                hour_end = hour.end_of(hour.start_of(start))
                if hour_end + lateness <= horizon and hour_end <= horizon - keep_minutes:
                    self.store.drop((window, start), fold=False)
                continue
            end = self.windows.kind(window).end_of(start)
            if end + lateness > mark:
                continue  # still accepts events
            if window == "1d" and end <= horizon - DAY_RETENTION_DAYS * 86400:
                self.store.drop((window, start), fold=True)
            elif window in ("1mo", "fp"):
                # Kept while it can be restated (`check_period` refuses its events after); a
                # fiscal period while a year to date that sums it can be.
                if window == "fp":
                    end = self.windows.fiscal["fp"].year_end(start)
                if end <= horizon - max(62 * 86400, self.windows.restatement + lateness):
                    self.store.drop((window, start), fold=False)

    def _remembered_new_ids(self) -> list[tuple[str, int]]:
        """New ids, less any evicted since they were added: replay must not resurrect them.
        Filtering is needed only after an eviction (rare), so the common case is free."""
        evicted, self._evicted_at_checkpoint = self._evicted_at_checkpoint, self.seen.evicted
        if self.seen.evicted == evicted:
            return self._new_ids
        return [(i, bucket) for i, bucket in self._new_ids if i in self.seen]

    def checkpoint(self, next_offset: int) -> dict[str, Any]:
        """The changelog record for everything applied since the previous checkpoint."""
        record = self._header(next_offset) | {
            "store": self.store.changes(),
            "join": self.join.changes(),
            "rates": self._new_rates,
            "seen": self._remembered_new_ids(),
        }
        self._new_ids = []
        self._new_rates = []
        return record

    def snapshot(self, next_offset: int, record_bytes: int = RECORD_BYTES) -> list[dict[str, Any]]:
        """The whole state as changelog records (in place of a checkpoint; several when large).

        Replayed alone, the log cut just before the first of them, or after the records before
        them, they give this state. They are one group (`streams.core.log_records`): replay
        applies them only once all have arrived, so a crash between two of them replays the
        batch, as after any checkpoint.
        """
        store = self.store.everything()
        entries = {
            "cells": store.pop("cells"),
            "base": store.pop("base"),
            "dropped": store.pop("dropped"),
            "join": self.join.everything(),
            "rates": self.fx.learned(),
            "seen": [[event_id, bucket] for event_id, bucket in self.seen.items()],
        }
        self._remembered_new_ids()  # everything remembered is in: start counting evictions anew
        self._new_ids = []
        self._new_rates = []
        return spread(self._header(next_offset), store, entries, "snapshot", record_bytes)

    def _header(self, next_offset: int) -> dict[str, Any]:
        self.next_offset = next_offset
        mark = self.watermark
        max_time = mark.max_event_time
        return {
            "v": CHECKPOINT_VERSION,
            "next_offset": next_offset,
            "max_event_time": None if max_time == NO_WATERMARK else max_time,
            # Absolute, and only the active sources (bounded by MAX_SOURCES): a record without
            # them (written before sources were kept) restores the old watermark, max - delay;
            # one without lags (written before lags were kept), the oldest source's rule.
            "sources": dict(mark.sources),
            "lags": mark.lag_state(),
            "watermark": None if mark.value == NO_WATERMARK else mark.value,
            "first_event_time": None
            if math.isinf(self.first_event_time)
            else self.first_event_time,
        }

    def restore(self, record: dict[str, Any]) -> None:
        """Apply one changelog record written by `checkpoint`."""
        if record.get("v") != CHECKPOINT_VERSION:
            raise ChangelogError(f"unsupported changelog record version {record.get('v')!r}")
        if record["max_event_time"] is not None:
            newest = float(record["max_event_time"])
            value = record.get("watermark", newest - self.watermark.delay)
            sources = {str(s): float(t) for s, t in record.get("sources", {}).items()}
            lags = record.get("lags")
            self.watermark.restore(
                newest,
                sources,
                NO_WATERMARK if value is None else value,
                None if lags is None else {str(s): lag for s, lag in lags.items()},
            )
        if record["first_event_time"] is not None:
            self.first_event_time = min(self.first_event_time, float(record["first_event_time"]))
        self.store.restore(record["store"])
        if self.guard is not None:
            for _, _, measure, dims, _ in record["store"]["cells"]:
                self.guard.admit(self.catalog.measures[measure].dims, dims)
            for measure, dims, _ in record["store"]["base"]:  # balances of quiet combinations
                self.guard.admit(self.catalog.measures[measure].dims, dims)
        self.join.restore(record["join"])
        for currency, when, rate in record["rates"]:
            self.fx.set_rate(currency, float(when), Decimal(rate))
        for event_id, bucket in record["seen"]:
            self.seen.add(event_id, int(bucket))
        self.next_offset = int(record["next_offset"])
        # Ids may go as soon as this partition's windows stop accepting events; windows wait for
        # the worker's `expire` call, which knows the other partitions' progress.
        if self.has_data:
            lateness = self.watermark.lateness
            self.seen.expire_before(self.windows.minute.start_of(self.watermark.value - lateness))
