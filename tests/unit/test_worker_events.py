"""The worker's batch step, without a broker: no single event can stop the fleet."""

from __future__ import annotations

import logging
import time
from decimal import Decimal
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from core_helpers import revenue_1m

from streams.settings import Settings
from streams.worker.worker import Worker

TP = TopicPartition("pulse.events", 0)


def _record(offset: int, payload: dict[str, Any]) -> ConsumerRecord[bytes, bytes]:
    value = orjson.dumps(payload)
    return ConsumerRecord(
        TP.topic, TP.partition, offset, 1_700_000_000_000 + offset, 0, b"k", value, None, 1,
        len(value), [("origin", b"test")],
    )  # fmt: skip


@pytest.mark.expect_errors
def test_an_unexpected_exception_on_one_event_dead_letters_it_and_the_rest_count(
    make_payload, caplog: pytest.LogCaptureFixture
) -> None:
    worker = Worker(Settings(kafka_bootstrap="127.0.0.1:9", metrics_port=0), "127.0.0.1:9")
    part = worker.state.assign((TP.topic, TP.partition))
    apply = part.apply

    def flaky(event: Any, now: float = float("inf"), occurred: float | None = None) -> None:
        # A fault injected into the core for one event: a bug of ours, not bad input.
        if event.event_id == "boom":
            raise RuntimeError("a bug on one event")
        apply(event, now, occurred)

    part.apply = flaky  # type: ignore[method-assign]
    now = time.time()
    at = now - 600
    records = [
        _record(10, make_payload(event_id="ok-1", at=at, amount="10.00", currency="EUR")),
        _record(11, make_payload(event_id="boom", at=at, amount="99.00", currency="EUR")),
        _record(12, make_payload(event_id="ok-2", at=at, amount="2.50", currency="EUR")),
    ]

    with caplog.at_level(logging.ERROR, logger="streams.worker"):
        rejected = worker.step.apply(TP, part, records, now)

    ((error, record),) = rejected
    assert (error.reason, error.offset, record.offset) == ("internal_error", 11, 11)
    assert error.detail == "RuntimeError: a bug on one event"
    assert "internal error on pulse.events[0]@11" in caplog.text
    # Counted for the batch; exported only once the batch is durable (not on a replay again).
    assert worker.step.pending.processed == {"order_placed": 2}
    assert worker.state.processed == {}
    assert sum(v for cells in revenue_1m(part).values() for v in cells.values()) == Decimal("12.50")
    # Internal errors do not count toward the bad ratio: 1000 of 1000 would trip it otherwise.
    worker.step.policy.record_batch(1000, [error] * 1000)


def test_a_rejection_keeps_no_traceback_to_hold_its_batch_in_memory(make_payload) -> None:
    worker = Worker(Settings(kafka_bootstrap="127.0.0.1:9", metrics_port=0), "127.0.0.1:9")
    part = worker.state.assign((TP.topic, TP.partition))
    records = [
        _record(0, make_payload(event_id="x", amount="NaN")),  # pydantic's error inside
        _record(1, {"type": "order_placed", "event_id": 5}),
    ]
    records.append(ConsumerRecord(TP.topic, 0, 2, 0, 0, None, b"{not json", None, 0, 9, []))

    rejected = worker.step.apply(TP, part, records, time.time())

    assert len(rejected) == 3
    for error, _ in rejected:
        assert (error.__traceback__, error.__context__, error.__cause__) == (None, None, None)
