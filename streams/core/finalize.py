"""Emits the KPI values of every window instance once it is final, exactly once.

A window is final when the watermark has passed its end plus the allowed lateness. Business days
are emitted from the first day with a counted event to the day of the newest one, each with its
balances, cumulative and trailing KPIs. With `release`, minute and hour windows are dropped once
emitted and business days older than the trailing span are folded, bounding memory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from streams.core.compiler import (
    DERIVED_FROM_MINUTES,
    DERIVED_FROM_PERIODS,
    PERIOD_WINDOWS,
    CompiledCatalog,
)
from streams.core.fiscal import FISCAL_WINDOWS
from streams.core.kpi_values import (
    KpiValue,
    day_sums,
    day_values,
    flow_values,
    period_values,
    span_accs,
    window_accs,
)
from streams.core.measures import Acc, Key, MeasureStore
from streams.core.partials import DAY_END, WindowInstance
from streams.core.partition_state import DAY_RETENTION_DAYS, PartitionState, Windows
from streams.core.restatements import Instance, Revisions, horizon_passed

TRAILING_DAYS = 30


class Finalizer:
    def __init__(
        self,
        catalog: CompiledCatalog,
        windows: Windows,
        lateness: float,
        only: frozenset[str] | None = None,
        *,
        restate: bool = True,
    ) -> None:
        """`only`: emit just these minute/hour/month windows (None: all); days always.
        `restate`: publish again, as a new revision, a period window an event changed after
        it was emitted (`streams.core.restatements`); the one finalizer of final values does,
        a provisional one does not (it would take the stores' notes of restated windows)."""
        self.catalog = catalog
        self.windows = windows
        self.lateness = lateness
        self.only = only
        self.restate = restate
        self.revisions = Revisions()
        self._next_day: int | None = None
        self._emitted: set[tuple[str, int]] = set()
        self.due: list[WindowInstance] = []
        """The window instances whose values the last `final_values` returned (their
        per-partition parts go to the merge stage: `streams.core.partials`)."""

    def final_values(
        self,
        stores: Sequence[MeasureStore],
        watermark: float,
        first_event_time: float,
        last_event_time: float,
        *,
        release: bool = False,
        skip_past: float | None = None,
    ) -> list[KpiValue]:
        """Values of the windows that became final since the previous call.

        `skip_past`: a lateness under which windows are taken as handled elsewhere (marked
        emitted without a value): a provisional pass skips windows already final.
        """
        self.due = []
        if math.isinf(first_event_time):
            return []
        values: list[KpiValue] = []
        for window, start in self._instances(stores):
            end = self.windows.kind(window).end_of(start)
            if (window, start) in self._emitted or end + self.lateness > watermark:
                continue
            if (skip_past is not None and end + skip_past <= watermark) or (
                self.only is not None and window not in self.only
            ):
                self._emitted.add((window, start))
                continue
            if window in PERIOD_WINDOWS:
                instance = self._period(window, start)
                accs = self._period_accs(stores, instance)
                values += self.revisions.first(
                    (window, start), period_values(self.catalog, window, start, end, accs)
                )
            else:
                instance = WindowInstance(window, start, end)
                values += flow_values(
                    self.catalog, window, start, end, window_accs(stores, window, start, end)
                )
            self._emitted.add((window, start))
            self.due.append(instance)
        if self.restate:
            values += self._restated(stores)
        if release:
            self._release(stores, watermark)
        self._forget(watermark)
        values += self._days(
            stores,
            watermark,
            first_event_time,
            last_event_time,
            release=release,
            skip_past=skip_past,
        )
        return values

    def close(self, state: PartitionState, watermark: float) -> list[KpiValue]:
        """Offline (one partition, read in order): values of the windows final at `watermark`,
        releasing what they no longer need."""
        return self.final_values(
            [state.store],
            watermark,
            state.first_event_time,
            state.watermark.max_event_time,
            release=True,
        )

    def _instances(self, stores: Sequence[MeasureStore]) -> list[tuple[str, int]]:
        """Every window instance with data, `5m`/`1h` derived from the `1m` buckets."""
        found: set[tuple[str, int]] = set()
        derived = [(name, self.windows.flow[name]) for name in sorted(DERIVED_FROM_MINUTES)]
        fiscal = [
            (name, kind)
            for name, kind in self.windows.fiscal.items()
            if name in DERIVED_FROM_PERIODS
        ]
        for store in stores:
            for window, start in store.buckets:
                found.add((window, start))
                if window == "1m":
                    found.update((name, kind.start_of(start)) for name, kind in derived)
                elif window == "fp":
                    found.update((name, kind.start_of(start)) for name, kind in fiscal)
        return sorted(found, key=lambda b: (b[1], b[0]))

    def _period(self, window: str, start: int) -> WindowInstance:
        """A period window instance; a year to date carries the start of its fiscal year."""
        kind = self.windows.kind(window)
        if window == "fytd":
            return WindowInstance(
                window, start, kind.end_of(start), self.windows.fiscal[window].since(start)
            )
        return WindowInstance(window, start, kind.end_of(start))

    def _period_accs(
        self, stores: Sequence[MeasureStore], instance: WindowInstance
    ) -> dict[Key, Acc]:
        if instance.window in DERIVED_FROM_PERIODS:
            since = instance.trailing_start
            return span_accs(stores, instance.start if since is None else since, instance.end)
        return window_accs(stores, instance.window, instance.start, instance.end)

    def _touched(self, restated: set[tuple[str, int]]) -> list[Instance]:
        """The period window instances that restated buckets feed: a month itself; a fiscal
        period, its quarter and every year to date from it to its year's end."""
        touched: set[Instance] = set()
        for window, start in restated:
            touched.add((window, start))
            if window == "fp":
                fiscal = self.windows.fiscal
                touched.add(("fq", fiscal["fq"].start_of(start)))
                year_end = fiscal["fp"].year_end(start)
                touched.update(
                    (w, s)
                    for w, s in self.revisions.starts()
                    if w == "fytd" and start <= s < year_end
                )
        return sorted(touched, key=lambda b: (b[1], b[0]))

    def _restated(self, stores: Sequence[MeasureStore]) -> list[KpiValue]:
        """New revisions of the period windows published final that events changed since."""
        buckets: set[tuple[str, int]] = set()
        for store in stores:
            buckets |= store.restated
            store.restated.clear()
        values: list[KpiValue] = []
        for window, start in self._touched(buckets):
            if (window, start) not in self.revisions:
                continue  # not published yet (or skipped): its first publication has it all
            instance = self._period(window, start)
            accs = self._period_accs(stores, instance)
            changed = self.revisions.restate(
                (window, start),
                period_values(self.catalog, window, start, instance.end, accs),
            )
            if changed:
                values += changed
                self.due.append(instance)
        return values

    def _release(self, stores: Sequence[MeasureStore], watermark: float) -> None:
        """Drop emitted minute buckets once the hour that sums them is emitted, months once
        they can no longer be restated, and fiscal periods once no year to date summing them
        can (their fiscal year's end is past the horizon)."""
        hour = self.windows.flow["1h"]
        month = self.windows.month
        restatement = self.windows.restatement
        for store in stores:
            for window, start in list(store.buckets):
                summed_by = ("1h", hour.start_of(start)) if window == "1m" else (window, start)
                if summed_by not in self._emitted:
                    continue
                if (
                    window == "1m"
                    or (
                        window == "1mo"
                        and horizon_passed(
                            month.end_of(start), self.lateness, restatement, watermark
                        )
                    )
                    or (
                        window == "fp"
                        and horizon_passed(
                            self.windows.fiscal["fp"].year_end(start),
                            self.lateness,
                            restatement,
                            watermark,
                        )
                    )
                ):
                    store.drop((window, start), fold=False)

    def _forget(self, watermark: float) -> None:
        """Bound the memory of what was emitted: far older than any bucket a store keeps."""
        periods = 100 * 86400 + self.windows.restatement + self.lateness
        keep = {"1d": 40 * 86400, "1mo": periods}
        # A fiscal period's buckets stay until its year's end is past the horizon.
        keep.update(dict.fromkeys(FISCAL_WINDOWS, periods + 380 * 86400))
        self._emitted = {
            (w, s)
            for w, s in self._emitted
            if self.windows.kind(w).end_of(s) > watermark - keep.get(w, 3 * 86400)
        }
        self.revisions.forget(
            {
                (w, s)
                for w, s in self.revisions.starts()
                if self.windows.kind(w).end_of(s) > watermark - keep[w]
            }
        )

    def _days(
        self,
        stores: Sequence[MeasureStore],
        watermark: float,
        first_event_time: float,
        last_event_time: float,
        *,
        release: bool,
        skip_past: float | None,
    ) -> list[KpiValue]:
        days = self.windows.day
        day = self._next_day
        if day is None:
            day = days.start_of(first_event_time)
            folded = [s.folded_through for s in stores if s.folded_through is not None]
            if folded:
                # Starting over (after a restart or rebalance) on state whose oldest days are
                # folded: a day whose trailing window reaches a folded day cannot be computed
                # again (its balances would take later days from `base`, its 30-day sums would
                # miss days). Such a day was final, and published, before that fold (with an
                # allowed lateness under the 3 days between the retention and the trailing span).
                day = max(day, days.shift(max(folded), TRAILING_DAYS))
        last = days.start_of(last_event_time)
        values: list[KpiValue] = []
        while day <= last and days.end_of(day) + self.lateness <= watermark:
            if skip_past is not None and days.end_of(day) + skip_past <= watermark:
                day = days.shift(day, 1)
                continue
            since = days.shift(day, -(TRAILING_DAYS - 1))
            cumulative = day_sums(stores, until=day)
            trailing = day_sums(stores, until=day, since=since)
            values += day_values(
                self.catalog, day, days.end_of(day), cumulative, trailing, trailing_start=since
            )
            self.due.append(WindowInstance(DAY_END, day, days.end_of(day), since))
            if release:
                old = days.shift(day, -DAY_RETENTION_DAYS)
                for store in stores:
                    for window, start in [b for b in store.buckets if b[0] == "1d" and b[1] < old]:
                        store.drop((window, start), fold=True)
                        self._emitted.discard((window, start))
            day = days.shift(day, 1)
        self._next_day = day
        return values
