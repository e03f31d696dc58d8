"""The KPI topic `<prefix>.kpi`: the values of every window instance once it closes.

Each window is published twice: when the watermark reaches its end (`"final": false`), and
again once the allowed lateness has passed (`"final": true`, including late updates); only the
final record when both happen in one batch (catching up on a backlog). The key is
KPI + window + window start + dimensions, so a compacted topic keeps the latest value of each.
Values are this worker's, over the partitions it owns (listed in the record): with several
workers, add up records of the same key from different workers' partitions. A ratio whose
denominator is zero on this worker has `"value": null` and its numerator and denominator: add
those up across workers, then divide.
"""

from __future__ import annotations

import math
import time

import orjson

from schemas import decimal_text
from streams.core import Finalizer, KpiValue, WorkerState

Record = tuple[bytes, bytes]


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
    }
    return kpi_key(value), orjson.dumps(body)


class KpiPublisher:
    """Decides, after each batch, which window values are due on the KPI topic."""

    def __init__(self, state: WorkerState) -> None:
        self._state = state
        self.reset()

    def reset(self) -> None:
        """Start over (after a rebalance): windows still held are published again."""
        config = self._state.config
        self._closing = Finalizer(config.catalog, config.windows, 0.0)
        self._final = Finalizer(config.catalog, config.windows, config.allowed_lateness)

    def due(self) -> tuple[list[KpiValue], list[KpiValue]]:
        """Values that became due with the last batch: (closing, final)."""
        state = self._state
        parts = [p for p in state.partitions.values() if p.has_data]
        if not parts:
            return [], []
        stores = [p.store for p in parts]
        mark = state.watermark()
        first = min(p.first_event_time for p in parts)
        last = max(p.watermark.max_event_time for p in parts)
        if math.isinf(first):
            return [], []
        lateness = self._state.config.allowed_lateness
        # A window that closes and is final in the same batch (catching up) is published once.
        closing = self._closing.final_values(stores, mark, first, last, skip_past=lateness)
        final = self._final.final_values(stores, mark, first, last)
        return closing, final

    def records(self, closing: list[KpiValue], final: list[KpiValue]) -> list[Record]:
        owned = sorted(f"{t}[{p}]" for t, p in self._state.partitions)
        now = time.time()
        return [kpi_record(v, final=False, partitions=owned, now=now) for v in closing] + [
            kpi_record(v, final=True, partitions=owned, now=now) for v in final
        ]
