"""Whether a peer of `make bench-peers` did the job: its windows against an independent sum.

The job (deploy/bench-peers/peer_job.py): revenue (order_placed +amount, order_cancelled and
refund_issued -amount) and orders (order_placed) per (business_unit, region, currency) and
1-minute event-time window, over every valid message, resends included. The expected sums are
computed here from the simulator's own labels (`bad_kind` None, or "duplicate" for a valid event
sent again) with plain dict access and `Decimal`: neither the peers' code nor pydantic, so a peer
that drops, double-counts or mis-windows events cannot pass, however fast it looks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from streams.tools.simulator import SimulatedMessage

WINDOW_SECONDS = 60
SIGNS = {"order_placed": 1, "order_cancelled": -1, "refund_issued": -1}
Window = tuple[str, int]
"""(business_unit|region|currency, window start in epoch seconds)."""


@dataclass
class Expected:
    """The job's answer: revenue and orders per window, and the items folded into them."""

    windows: dict[Window, tuple[Decimal, int]] = field(default_factory=dict)
    items: int = 0


def expected_windows(messages: Iterable[SimulatedMessage]) -> Expected:
    """The independent sums of the job over `messages` (all of them, in any order)."""
    out = Expected()
    sums: dict[Window, list[Any]] = {}
    for message in messages:
        if message.bad_kind not in (None, "duplicate"):
            continue
        event = orjson.loads(message.value)
        sign = SIGNS.get(event["type"])
        if sign is None:
            continue
        dims = event["dimensions"]
        key = f"{dims['business_unit']}|{dims['region']}|{event['currency']}"
        at = datetime.fromisoformat(event["occurred_at"]).timestamp()
        start = math.floor(at) // WINDOW_SECONDS * WINDOW_SECONDS
        held = sums.setdefault((key, start), [Decimal(0), 0])
        held[0] += sign * Decimal(event["amount"])
        held[1] += 1 if sign > 0 else 0
        out.items += 1
    out.windows = {w: (v[0], v[1]) for w, v in sums.items()}
    return out


def check_peer(expected: Expected, report: dict[str, Any]) -> list[str]:
    """What is wrong with a peer's `report` (its JSON line: `items` and `windows` rows of
    [key, start, revenue text, orders]); empty when it is right: it folded exactly the valid
    revenue and order events, and reported every window they fall in, each with the expected
    sums, and no other."""
    problems: list[str] = []
    if report.get("items") != expected.items:
        problems.append(f"folded {report.get('items')} items, expected {expected.items}")
    seen: set[Window] = set()
    rows: Sequence[Any] = report.get("windows") or ()
    for key, start, revenue, orders in rows:
        window = (str(key), int(start))
        seen.add(window)
        want = expected.windows.get(window)
        if want is None:
            problems.append(f"window {window}: reported, but no event falls in it")
        elif (Decimal(revenue), int(orders)) != want:
            problems.append(
                f"window {window}: revenue {revenue}, orders {orders}; expected "
                f"{want[0]}, {want[1]}"
            )
    for window in sorted(expected.windows.keys() - seen):
        problems.append(f"window {window}: missing (expected {expected.windows[window]})")
    return problems
