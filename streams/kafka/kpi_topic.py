"""The KPI topic `<prefix>.kpi`: the values of every window instance once it closes.

Each window is published twice: when the watermark reaches its end (`"final": false`), and
again once the allowed lateness has passed (`"final": true`, including late updates); only the
final record when both happen in one batch (catching up on a backlog). The key is
KPI + window + window start + dimensions, so a compacted topic keeps the latest value of each.
Values are this worker's, over the partitions it owns (listed in the record): with several
workers, add up records of the same key from different workers' partitions. A ratio whose
denominator is zero on this worker has `"value": null` and its numerator and denominator: add
those up across workers, then divide.

A period window (`1mo`) restated after it was final (a budget revision booked to a closed month,
`streams.core.restatements`) is published again, same key, `"final": true`, with the next
`"revision"` (1 for every first publication) and `"as_reported"`, the value first published final:
the compacted topic keeps the latest restatement, and the as-reported value with it.

With a merge stage (`PULSE_MERGE_STAGE`), workers leave `<prefix>.kpi` to it and publish only
their partials (`partial_records`): each owned partition's parts of the same windows, and its
progress, to `<prefix>.partials`. The merge stage publishes the company-wide values here, in the
same format (`kpi_record`), with every source partition listed.
"""

from __future__ import annotations

import math
import time

import orjson

from schemas import decimal_text
from streams.core import Finalizer, KpiValue, WorkerState
from streams.core.partials import (
    Progress,
    WindowInstance,
    encode_partial,
    encode_progress,
    partial_of,
)
from streams.core.windows import NO_WATERMARK

Record = tuple[bytes, bytes]
PARTIALS_PARTITIONS = 1
"""One partition: the merge stage needs every source partition's progress beside each window's
parts, and partials are few (per window instance and source partition, not per event). A merge
stage scaled over several partitions would need progress sent to each of them."""
PROGRESS_STEP_S = 60
"""Progress is stated whenever the watermark passes a multiple of this (the shortest window),
or of it plus the allowed lateness, even when none of this worker's windows closed: the merge
stage waits for every source partition before it emits a window."""


def kpi_key(value: KpiValue) -> bytes:
    dims = ";".join(f"{k}={v}" for k, v in sorted(value.labels))
    return f"{value.kpi}|{value.window}|{value.start}|{dims}".encode()


def kpi_record(value: KpiValue, *, final: bool, partitions: list[str], now: float) -> Record:
    body = {
        "kpi": value.kpi,
        "window": value.window,
        "window_start": value.start,
        "window_end": value.end,
        "dimensions": dict(value.labels),
        "value": None if value.value is None else decimal_text(value.value),
        "numerator": None if value.numerator is None else decimal_text(value.numerator),
        "denominator": None if value.denominator is None else decimal_text(value.denominator),
        "final": final,
        "partitions": partitions,
        "emitted_at": round(now, 3),
        "revision": value.revision,
        "as_reported": None if value.as_reported is None else decimal_text(value.as_reported),
    }
    return kpi_key(value), orjson.dumps(body)


class KpiPublisher:
    """Decides, after each batch, which window values are due on the KPI topic."""

    def __init__(
        self, state: WorkerState, *, own_values: bool = True, partials: bool = False
    ) -> None:
        """`own_values`: publish this worker's values to `<prefix>.kpi` (False when a merge
        stage publishes the company-wide values there); `partials`: make the partial records
        a merge stage reads (only when one runs: they cost a record per window instance and
        owned partition)."""
        self._state = state
        self.own_values = own_values
        self.partials = partials
        self.reset()

    def reset(self) -> None:
        """Start over (after a rebalance): windows still held are published again."""
        config = self._state.config
        self._closing = Finalizer(config.catalog, config.windows, 0.0, restate=False)
        self._final = Finalizer(config.catalog, config.windows, config.allowed_lateness)
        self._due: list[tuple[WindowInstance, bool]] = []
        self._mark = NO_WATERMARK
        self._stated: tuple[int, int] | None = None

    def due(self) -> tuple[list[KpiValue], list[KpiValue]]:
        """Values that became due with the last batch: (closing, final)."""
        state = self._state
        self._due = []
        self._mark = NO_WATERMARK
        parts = [p for p in state.partitions.values() if p.has_data]
        if not parts:
            return [], []
        stores = [p.store for p in parts]
        mark = self._mark = state.watermark()
        first = min(p.first_event_time for p in parts)
        last = max(p.watermark.max_event_time for p in parts)
        if math.isinf(first):
            return [], []
        lateness = self._state.config.allowed_lateness
        # A window that closes and is final in the same batch (catching up) is published once.
        closing = self._closing.final_values(stores, mark, first, last, skip_past=lateness)
        final = self._final.final_values(stores, mark, first, last)
        self._due = [(w, False) for w in self._closing.due] + [(w, True) for w in self._final.due]
        return closing, final

    def partial_records(self) -> list[Record]:
        """For the merge stage, after `due`: each owned partition's parts of the windows due
        (none for a partition with nothing in a window), then each owned partition's progress
        (the worker's watermark) when windows were due or it passed a step. Partials go before
        progress, on one partition of the partials topic: the merge stage has every part of a
        window before the progress that lets it emit the window."""
        if not self.partials:
            return []
        state = self._state
        records = [
            (partial.key, encode_partial(partial))
            for instance, final in self._due
            for source, part in sorted(state.partitions.items())
            if not (partial := partial_of(part.store, instance, source, final=final)).empty
        ]
        mark = self._mark
        if math.isinf(mark):
            return records
        lateness = state.config.allowed_lateness
        stated = (int(mark // PROGRESS_STEP_S), int((mark - lateness) // PROGRESS_STEP_S))
        if records or stated != self._stated:
            self._stated = stated
            records += [
                (progress.key, encode_progress(progress))
                for source in sorted(state.partitions)
                for progress in [Progress(source, mark)]
            ]
        return records

    def records(self, closing: list[KpiValue], final: list[KpiValue]) -> list[Record]:
        if not self.own_values:
            return []
        owned = sorted(f"{t}[{p}]" for t, p in self._state.partitions)
        now = time.time()
        return [kpi_record(v, final=False, partitions=owned, now=now) for v in closing] + [
            kpi_record(v, final=True, partitions=owned, now=now) for v in final
        ]
