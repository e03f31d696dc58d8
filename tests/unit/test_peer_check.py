"""`make bench-peers`' checker: a peer's windows against the bench's independent sums (sums worked
out by hand here), and the peers' shared job (deploy/bench-peers/peer_job.py) agreeing with it."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

from streams.tools.peer_check import Expected, check_peer, expected_windows
from streams.tools.simulator import SimulatedMessage, SimulationConfig, simulate

NOON = int(datetime(2026, 12, 1, 12, tzinfo=UTC).timestamp())


def message(
    kind: str, at: str, amount: str, *, bu: str = "retail", currency: str = "EUR", bad: str | None
) -> SimulatedMessage:
    event = {
        "event_id": f"e-{kind}-{at}-{amount}",
        "type": kind,
        "occurred_at": f"2026-12-01T{at}+00:00",
        "source": "oms-emea",
        "schema_version": 1,
        "dimensions": {"business_unit": bu, "region": "emea", "channel": "web"},
        "order_id": "ord-1",
        "amount": amount,
        "currency": currency,
    }
    return SimulatedMessage(b"ord-1", orjson.dumps(event), bad, 0.0)


PLACED = message("order_placed", "12:00:30.000", "10.50", bad=None)
MESSAGES = [
    PLACED,
    SimulatedMessage(PLACED.key, PLACED.value, "duplicate", 0.0),  # valid, sent again: counted
    message("order_cancelled", "12:00:59.999", "2.25", bad=None),
    message("refund_issued", "12:01:00.000", "1.10", bad=None),  # the next window
    message("order_placed", "12:00:10.000", "7.00", currency="USD", bad=None),  # a key of its own
    message("order_placed", "12:00:20.000", "99.00", bad="schema_violation"),  # bad: not counted
    message("inventory_issued", "12:00:40.000", "5.00", bad=None),  # not revenue
]
EUR, USD = "retail|emea|EUR", "retail|emea|USD"
# By hand: 10.50 + 10.50 - 2.25 = 18.75 and 2 orders at 12:00; -1.10 and none at 12:01;
# 7.00 and 1 order in USD at 12:00. Five items.
HAND = {
    (EUR, NOON): (Decimal("18.75"), 2),
    (EUR, NOON + 60): (Decimal("-1.10"), 0),
    (USD, NOON): (Decimal("7.00"), 1),
}


def right_report() -> dict[str, Any]:
    return {
        "items": 5,
        "windows": [
            [EUR, NOON, "18.75", 2],
            [EUR, NOON + 60, "-1.1", 0],  # another spelling of the same decimal
            [USD, NOON, "7", 1],
        ],
    }


def test_the_independent_sums_are_the_hand_sums() -> None:
    expected = expected_windows(MESSAGES)
    assert expected.windows == HAND
    assert expected.items == 5


def test_a_right_report_passes() -> None:
    assert check_peer(expected_windows(MESSAGES), right_report()) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            lambda r: r["windows"][0].__setitem__(2, "18.74"),
            "revenue 18.74, orders 2; expected 18.75",
        ),
        (lambda r: r["windows"][0].__setitem__(3, 1), "revenue 18.75, orders 1; expected 18.75, 2"),
        (lambda r: r["windows"].pop(1), f"window ('{EUR}', {NOON + 60}): missing"),
        (lambda r: r["windows"].append([EUR, NOON + 120, "0", 0]), "no event falls in it"),
        (lambda r: r.__setitem__("items", 4), "folded 4 items, expected 5"),
        (lambda r: r["windows"][2].__setitem__(1, NOON + 60), "no event falls in it"),
    ],
    ids=["wrong-sum", "wrong-count", "missing", "extra", "dropped-items", "wrong-window"],
)
def test_a_wrong_report_is_rejected(change: Any, problem: str) -> None:
    report = right_report()
    change(report)
    problems = check_peer(expected_windows(MESSAGES), report)
    assert any(problem in p for p in problems), problems


def peer_job() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "deploy" / "bench-peers" / "peer_job.py"
    spec = importlib.util.spec_from_file_location("peer_job", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("peer_job", module)
    spec.loader.exec_module(module)
    return module


def fold(job: ModuleType, messages: list[SimulatedMessage]) -> dict[str, Any]:
    """The peers' job done by hand with its own `parse` and `window_start`: their report."""
    sums: dict[tuple[str, int], list[Any]] = {}
    items = 0
    for m in messages:
        item = job.parse(m.value)
        if item is None:
            continue
        key, at, amount, orders = item
        held = sums.setdefault((key, job.window_start(at)), [Decimal(0), 0])
        held[0] += amount
        held[1] += orders
        items += 1
    rows = [[k, s, str(v[0]), v[1]] for (k, s), v in sums.items()]
    return {"items": items, "windows": rows}


def test_the_peers_job_agrees_with_the_checker_on_the_bench_stream() -> None:
    """Every bad kind the bench sends (implausible times, unknown types, ...) is dropped by the
    peers' `parse` exactly as the checker's labels say; 1% bad as in the bench, 20% here."""
    config = SimulationConfig(
        start=datetime(2026, 12, 1, tzinfo=UTC), rate=50, duration=600, bad_ratio=0.2
    )
    messages = list(simulate(config))
    assert {m.bad_kind for m in messages} >= {"timestamp_out_of_range", "duplicate", None}
    expected: Expected = expected_windows(messages)
    assert expected.items > 1000
    assert check_peer(expected, fold(peer_job(), messages)) == []
