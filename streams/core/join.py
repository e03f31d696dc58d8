"""A bounded event-time join: the time from a start event to an end event sharing a key.

Used for order cycle time (order_placed → shipment_delivered on order_id). Starts are remembered
for `ttl` seconds of event time; an end that arrives before its start waits, also for `ttl`.
Past `max_entries` the oldest entries are dropped and counted in `evicted`. An end whose own
window is final waits for nothing (a start arriving now could not add its duration), so it is
dropped then and counted in `unmatched`, not kept for `ttl`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

from streams.core.measures import Dims

Pending = tuple[str, float, Dims]
"""(measure, end time, dimensions) of an end event waiting for its start."""


class TimeJoin:
    def __init__(self, ttl: float, max_entries: int) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.evicted = 0
        self.unmatched = 0
        """Ends dropped without their start (its order never came, or came too late)."""
        # Ordered: dropping the oldest is O(1) (a plain dict scans its deleted front slots).
        self.started: OrderedDict[str, float] = OrderedDict()
        self.waiting: OrderedDict[str, list[Pending]] = OrderedDict()
        self._log: list[list[Any]] = []

    def __len__(self) -> int:
        """Starts and keys with waiting ends held."""
        return len(self.started) + len(self.waiting)

    def start(self, key: str, at: float) -> list[tuple[str, float, Dims, float]]:
        """Record a start; return the waiting ends it completes as (measure, end, dims, seconds)."""
        started = self.started
        started[key] = at
        self._log.append(["s", key, at])
        if len(started) > self.max_entries:
            self._bound(started)
        pending = self.waiting.pop(key, None)
        if not pending:  # the common case: no end came first
            return []
        self._log.append(["m", key])
        return [(measure, end, dims, end - at) for measure, end, dims in pending]

    def end(self, measure: str, key: str, at: float, dims: Dims) -> float | None:
        """Seconds since the start of `key`, or None (the end then waits for its start)."""
        began = self.started.get(key)
        if began is not None:
            return at - began
        pending = self.waiting.setdefault(key, [])
        pending.append((measure, at, dims))
        # Logged with its position, so replaying a record twice sets rather than appends, while
        # two identical deliveries (two shipments at one instant) stay two.
        self._log.append(["w", key, len(pending) - 1, measure, at, list(dims)])
        self._bound(self.waiting)
        return None

    def expire_before(self, cutoff: float, ends_final_before: float = -math.inf) -> None:
        """Forget starts and waiting ends older than `cutoff - ttl`, and waiting ends before
        `ends_final_before` (where their windows are final; insertion ≈ time order)."""
        limit = cutoff - self.ttl
        while self.started:
            key, at = next(iter(self.started.items()))
            if at >= limit:
                break
            del self.started[key]
        limit = max(limit, ends_final_before)
        while self.waiting:
            key, pending = next(iter(self.waiting.items()))
            if max(at for _, at, _ in pending) >= limit:
                break
            del self.waiting[key]
            self.unmatched += len(pending)

    def _bound(self, entries: OrderedDict[str, Any]) -> None:
        while len(entries) > self.max_entries:
            entries.popitem(last=False)
            self.evicted += 1

    def changes(self) -> list[list[Any]]:
        log, self._log = self._log, []
        return log

    def everything(self) -> list[list[Any]]:
        """The pending log and then every start and waiting end, as log entries: replayed
        alone or after the log before it, it gives the join as it is."""
        log = self.changes()
        log += [["s", key, at] for key, at in self.started.items()]
        log += [
            ["w", key, position, measure, at, list(dims)]
            for key, pending in self.waiting.items()
            for position, (measure, at, dims) in enumerate(pending)
        ]
        return log

    def restore(self, log: list[list[Any]]) -> None:
        for entry in log:
            if entry[0] == "s":
                self.started[entry[1]] = float(entry[2])
            elif entry[0] == "m":
                self.waiting.pop(entry[1], None)
            else:
                _, key, position, measure, at, dims = entry
                pending = self.waiting.setdefault(key, [])
                waiting = (measure, float(at), tuple(dims))
                if position < len(pending):
                    pending[position] = waiting  # a replayed record: set, do not append
                else:
                    pending.append(waiting)
