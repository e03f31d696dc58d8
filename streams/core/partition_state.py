"""Everything one source partition contributes: watermark, dedupe memory and KPI windows.

Updated in place per event by `apply`; `checkpoint` returns what changed since the last
checkpoint as one changelog record (absolute values, so replaying a record twice is harmless),
closed by the source offset it covers. `restore` applies such records in order. This is the
write-ahead log of DESIGN.md principle 5: one write per changed key per batch, not per event.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from schemas import Envelope
from streams.core.dedupe import Deduper
from streams.core.money import FxTable
from streams.core.revenue import RevenueWindows, Series, revenue_delta
from streams.core.windows import NO_WATERMARK, TumblingWindows, Watermark
from streams.errors import InvalidEvent

CHECKPOINT_VERSION = 1


class PartitionState:
    def __init__(
        self,
        windows: TumblingWindows,
        watermark: Watermark,
        fx: FxTable,
        dedupe_max_entries: int,
        retained_windows: int,
    ) -> None:
        self.windows = windows
        self.watermark = watermark
        self.fx = fx
        self.retained_windows = retained_windows
        self.seen = Deduper(dedupe_max_entries)
        self.revenue = RevenueWindows()
        self.next_offset: int | None = None
        self._dirty: set[tuple[int, Series]] = set()
        self._new_ids: list[tuple[str, int]] = []

    @property
    def has_data(self) -> bool:
        return self.watermark.max_event_time != NO_WATERMARK

    def apply(self, event: Envelope, now: float = math.inf) -> None:
        """Count one valid event. Raises `InvalidEvent` for a duplicate, a late event or an
        unknown currency; the state is unchanged then.

        `now` (wall-clock epoch seconds) caps how far the event moves the watermark: an event
        stamped in the future by a skewed clock still counts in its window, but does not make
        everyone else's events late. Offline replays leave it unbounded.
        """
        if event.event_id in self.seen:
            raise InvalidEvent("duplicate", f"event_id {event.event_id} was already counted")
        occurred = event.occurred_at.timestamp()
        start = self.windows.start_of(occurred)
        if not self.watermark.accepts(start + self.windows.size):
            raise InvalidEvent(
                "late",
                f"window starting {start} closed for good; watermark {self.watermark.value:.3f}",
            )
        delta = revenue_delta(event, self.fx)
        self.seen.add(event.event_id, start)
        self._new_ids.append((event.event_id, start))
        self.watermark.observe(min(occurred, now))
        if delta is not None:
            series = (event.dimensions.business_unit, event.dimensions.region)
            self.revenue.add(start, series, delta)
            self._dirty.add((start, series))

    def expire(self, shown_watermark: float) -> None:
        """Drop ids and windows that can no longer change and are past the retention.

        `shown_watermark` is the watermark the worker exports by (`WorkerState.watermark`, the
        slowest owned partition): windows are kept for it, not for this partition alone, which
        may run far ahead after a backlog.
        """
        if not self.has_data:
            return
        first_open = self._first_open_start()
        self.seen.expire_before(first_open)
        last_closed = self.windows.last_closed_start(min(shown_watermark, self.watermark.value))
        keep_from = first_open
        if last_closed is not None:
            keep_from = min(
                keep_from, last_closed - (self.retained_windows - 1) * self.windows.size
            )
        self.revenue.drop_before(keep_from)

    def _first_open_start(self) -> int:
        """Start of the oldest window that still accepts events."""
        return self.windows.start_of(self.watermark.value - self.watermark.lateness)

    def checkpoint(self, next_offset: int) -> dict[str, Any]:
        """The changelog record for everything applied since the previous checkpoint."""
        self.next_offset = next_offset
        max_time = self.watermark.max_event_time
        record = {
            "v": CHECKPOINT_VERSION,
            "next_offset": next_offset,
            "max_event_time": None if max_time == NO_WATERMARK else max_time,
            "revenue": [
                [start, bu, region, str(self.revenue.get(start, (bu, region)))]
                for start, (bu, region) in sorted(self._dirty)
            ],
            # Ids evicted since they were added stay forgotten: replay must not resurrect them.
            "seen": [(i, bucket) for i, bucket in self._new_ids if i in self.seen],
        }
        self._dirty = set()
        self._new_ids = []
        return record

    def restore(self, record: dict[str, Any]) -> None:
        """Apply one changelog record written by `checkpoint`."""
        if record.get("v") != CHECKPOINT_VERSION:
            raise ValueError(f"unsupported changelog record version {record.get('v')!r}")
        if record["max_event_time"] is not None:
            self.watermark.observe(float(record["max_event_time"]))
        for start, bu, region, value in record["revenue"]:
            self.revenue.set(int(start), (bu, region), Decimal(value))
        for event_id, bucket in record["seen"]:
            self.seen.add(event_id, int(bucket))
        self.next_offset = int(record["next_offset"])
        # Ids may go as soon as this partition's windows stop accepting events; windows wait for
        # the worker's `expire` call, which knows the other partitions' progress.
        if self.has_data:
            self.seen.expire_before(self._first_open_start())
