"""Known events in, exact revenue per window and dimension on /metrics, bad ones dead-lettered."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import orjson
from events import at, event, order
from kafka_helpers import eventually, produce, read_topic, revenue_of, scrape, value_of

from streams.settings import Settings
from streams.worker.worker import Worker

# Settings of make_settings: 60 s windows, watermark delay 5 s, allowed lateness 30 s,
# max_event_bytes 2048, static rates USD 0.92 and GBP 1.17 (EUR per unit).


def window_end(clock: str) -> float:
    return datetime.fromisoformat(at(clock)).astimezone(UTC).timestamp()


async def test_revenue_per_window_and_dead_letters(
    kafka_bootstrap: str,
    make_settings: Callable[..., Settings],
    input_topic: Callable[[int], Awaitable[str]],
    start_worker: Callable[[Settings], Awaitable[Worker]],
) -> None:
    topic = await input_topic(1)
    settings = make_settings()
    worker = await start_worker(settings)

    e1 = order("e1", "10:00:10", "100.00")  # retail/emea +100.00
    phase1 = [
        e1,  # offset 0
        order("e2", "10:00:20", "50.00", region="amer", currency="USD"),  # 1: 50 x 0.92 = 46.00
        order("e3", "10:00:30", "200.00", bu="wholesale", currency="GBP"),  # 2: 200 x 1.17 = 234.00
        e1,  # 3: duplicate
        b"\x00not json at all",  # 4: undecodable
        event("e4", "order_cancelled", "10:00:40", amount="30.00"),  # 5: retail/emea -30.00
        event(  # 6: retail/amer refund 10 USD = -9.20
            "e5", "refund_issued", "10:00:50", region="amer", amount="10.00", currency="USD"
        ),
        order(
            "e6", "10:01:05", "70.00"
        ),  # 7: next window; watermark 10:01:00 closes [10:00, 10:01)
        order("e7", "10:00:55", "5.25"),  # 8: out of order, within lateness: counts in 10:00
        order("e8", "10:00:56", "NaN"),  # 9: non_finite_number
        event("e9", "order_teleported", "10:00:57", amount="1.00"),  # 10: unknown_type
        orjson.dumps({**orjson.loads(order("e10", "10:00:58", "1.00")), "currency": None}),  # 11
        order("e11", "10:00:59", "1.00").replace(b"2026-01-05", b"1970-01-05"),  # 12: timestamp
        order("e12", "10:00:59", "1.00", customer_id="c", note="x" * 3000),  # 13: oversized
        order("e13", "10:00:59", "1.00", currency="JPY"),  # 14: unknown_currency
    ]
    await produce(kafka_bootstrap, topic, phase1)

    first = {
        ("retail", "emea"): 100.00 - 30.00 + 5.25,  # 75.25
        ("retail", "amer"): 46.00 - 9.20,  # 36.80
        ("wholesale", "emea"): 234.00,
    }

    async def window_shows(end: str, expected: dict[tuple[str, str], float]) -> bool:
        samples = await scrape(worker.server.url)
        shown = value_of(samples, "pulse_window_end_timestamp_seconds", window="1m")
        return shown == window_end(end) and revenue_of(samples) == expected

    await eventually(lambda: window_shows("10:01:00", first), what="revenue of 10:00-10:01")

    phase2 = [
        order("e14", "10:01:30", "10.00", bu="wholesale"),  # 15: wholesale/emea, window 10:01
        order("e15", "10:02:40", "1.00", region="amer"),  # 16: watermark 10:02:35 closes 10:01
        order("e16", "10:00:59", "999.00"),  # 17: late: 10:02:35 >= 10:01:00 + 30 s
    ]
    await produce(kafka_bootstrap, topic, phase2)
    second = {
        ("retail", "emea"): 70.00,
        ("retail", "amer"): 0.0,  # quiet in this window, still shown
        ("wholesale", "emea"): 10.00,
    }
    await eventually(lambda: window_shows("10:02:00", second), what="revenue of 10:01-10:02")

    async def all_read() -> bool:  # e16 may come in a batch after the one that closed 10:01
        state = worker.state
        return sum(state.processed.values()) + sum(state.rejected.values()) == 18

    await eventually(all_read, what="all 18 messages read")

    samples = await scrape(worker.server.url)
    assert value_of(samples, "pulse_events_processed_total", type="order_placed") == 7
    assert value_of(samples, "pulse_events_processed_total", type="order_cancelled") == 1
    assert value_of(samples, "pulse_events_processed_total", type="refund_issued") == 1
    assert value_of(samples, "pulse_last_event_timestamp_seconds") == window_end("10:02:40")

    expected_dead = {
        3: "duplicate",
        4: "undecodable",
        9: "non_finite_number",
        10: "unknown_type",
        11: "schema_violation",
        12: "timestamp_out_of_range",
        13: "oversized",
        14: "unknown_currency",
        17: "late",
    }
    for reason in set(expected_dead.values()):
        assert value_of(samples, "pulse_events_rejected_total", reason=reason) == 1, reason

    sent = phase1 + phase2
    dead = await read_topic(kafka_bootstrap, settings.deadletter_topic, len(expected_dead))
    got = {}
    for record in dead:
        headers = {name: value.decode() for name, value in record.headers}
        offset = int(headers["pulse.offset"])
        assert headers["pulse.topic"] == topic
        assert headers["pulse.partition"] == "0"
        assert headers["pulse.detail"]
        assert record.value == sent[offset], "dead letter must keep the original bytes"
        got[offset] = headers["pulse.reason"]
    assert got == expected_dead
