"""The revenue + orders job every peer runs, defined once (`make bench-peers`).

Per message: decode with orjson, validate with kpi-pulse's own pydantic contract
(`schemas.event_adapter`, the models the ceiling and the worker use); keep `order_placed` (+amount,
one order), `order_cancelled` and `refund_issued` (-amount), as kpi-pulse's `revenue` and `orders`
measures do; sum per (business_unit, region, currency) and 1-minute event-time window.

What the peers do *not* do that kpi-pulse does, so the comparison leans their way: no conversion
into the reporting currency (a sum per currency instead: that needs the stream's `fx_rate` events
as state), no dedupe by `event_id` (a resent event is summed again), no dead letters, no changelog.

Run by a peer's own venv with the repository root on PYTHONPATH (for `schemas`, which imports
nothing of `streams`). Each peer prints one JSON object on stdout (`report`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from pydantic import ValidationError

from schemas import event_adapter

WINDOW_SECONDS = 60
GRACE_SECONDS = 86_400
"""Allowed lateness in event time: a day, longer than the bench's stream (200k events are a few
hours), so that no event of it is late. A resent event carries its original's time, and a
replayed backlog is read from the partitions unevenly: a peer that keys across partitions (Quix's
`group_by`) saw events up to ~6 minutes behind its newest with 5 minutes of grace, and in 2 of
12 runs up to ~37 minutes behind with 30 minutes, and dropped them as late. Every window is still
reported at the end (Bytewax: the end of input; Quix: `current()`)."""
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC).timestamp()
FUTURE_SKEW_SECONDS = 300.0
"""As `PULSE_MAX_FUTURE_SKEW_SECONDS` by default."""
SIGNS = {"order_placed": 1, "order_cancelled": -1, "refund_issued": -1}

Item = tuple[str, datetime, Decimal, int]
"""(business_unit|region|currency, occurred_at, signed amount, orders)."""


def parse(value: bytes | None) -> Item | None:
    """The job's item of one message, or None for an invalid or unrelated one. Invalid as
    kpi-pulse's decoder says in short: not JSON, not the contract, or an implausible
    `occurred_at` (before 2000 or more than `FUTURE_SKEW_SECONDS` ahead)."""
    try:
        event: Any = event_adapter.validate_python(orjson.loads(value or b""))
    except (orjson.JSONDecodeError, ValidationError):
        return None
    occurred = event.occurred_at.timestamp()
    if occurred < EARLIEST or occurred > time.time() + FUTURE_SKEW_SECONDS:
        return None
    sign = SIGNS.get(event.type)
    if sign is None:
        return None
    dims = event.dimensions
    return (
        f"{dims.business_unit}|{dims.region}|{event.currency}",
        event.occurred_at,
        sign * event.amount,
        1 if sign > 0 else 0,
    )


def window_start(at: datetime) -> int:
    """Epoch seconds of the 1-minute window holding `at`."""
    seconds = int(at.timestamp())
    return seconds - seconds % WINDOW_SECONDS


def arguments(peer: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=f"{peer}: the revenue + orders job")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--items", type=int, required=True, help="items the job will see")
    return parser.parse_args()


class Clock:
    """From the first message seen to the end: the peer's time to final results."""

    def __init__(self) -> None:
        self.first: float | None = None

    def seen(self) -> None:
        if self.first is None:
            self.first = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - (self.first or time.perf_counter())


def report(
    peer: str,
    seconds: float,
    items: int,
    windows: dict[tuple[str, int], list[Any]],
    ended: str = "end of input",
) -> None:
    """One JSON line on stdout: seconds, items folded, each window's [key, start, revenue,
    orders] (revenue as a decimal string), and why the job ended."""
    rows = [[k, start, str(v[0]), v[1]] for (k, start), v in sorted(windows.items())]
    line = {"peer": peer, "seconds": seconds, "items": items, "windows": rows, "ended": ended}
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()
