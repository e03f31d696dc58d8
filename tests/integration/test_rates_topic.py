"""FX rates reach every worker (the `<prefix>.rates` global table), whoever owns the rate's
input partition."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal

import orjson
from events import at, event, order
from kafka_helpers import eventually, produce, read_topic, revenue_of, scrape

from streams.kafka.clients import TopicSpec, ensure_topics
from streams.settings import Settings
from streams.worker import Worker

ORDERS_AT = datetime.fromisoformat(at("10:00:10")).timestamp()


def fx_rate(event_id: str, clock: str, currency: str, rate: str) -> bytes:
    """An `fx_rate` event: from `clock` on, one `currency` is worth `rate` EUR."""
    body = orjson.loads(event(event_id, "fx_rate", clock))
    del body["dimensions"]
    return orjson.dumps(body | {"currency": currency, "quote_currency": "EUR", "rate": rate})


def usd_rate(worker: Worker) -> Decimal | None:
    """The USD rate this worker converts a 10:00:10 order at."""
    return worker.state.config.fx.rate_at("USD", ORDERS_AT)


async def test_a_rate_read_on_one_worker_converts_on_both(
    kafka_bootstrap: str,
    names: dict[str, str],
    make_settings: Callable[..., Settings],
    input_topic: Callable[[int], Awaitable[str]],
    start_worker: Callable[[Settings], Awaitable[Worker]],
) -> None:
    topic = await input_topic(2)
    settings = make_settings(detection=False)  # static rate USD=0.92 until an fx_rate says 2.0
    first = await start_worker(settings)
    second = await start_worker(settings)

    async def one_partition_each() -> bool:
        return len(first.state.partitions) == 1 and len(second.state.partitions) == 1

    await eventually(one_partition_each, within=60, what="one partition per worker")

    # The rate goes to partition 0 only; only one of the workers reads that partition.
    rate = fx_rate("fx1", "10:00:00", "USD", "2.0")
    await produce(kafka_bootstrap, topic, [rate], partition=0)

    async def both_know_the_rate() -> bool:
        return usd_rate(first) == usd_rate(second) == Decimal("2.0")

    # The documented ordering: a rate converts what a worker processes after it reached it.
    await eventually(both_know_the_rate, what="USD at 2.0 on both workers")

    for partition in (0, 1):
        await produce(
            kafka_bootstrap,
            topic,
            [
                order(f"o{partition}", "10:00:10", "1000.00", currency="USD"),
                order(f"close{partition}", "10:01:30", "1.00"),  # watermark 10:01:25
            ],
            partition=partition,
        )

    async def total() -> float:
        revenue = 0.0
        for worker in (first, second):
            revenue += sum(revenue_of(await scrape(worker.server.url)).values())
        return revenue

    async def converted_on_both() -> bool:
        return await total() == 4000.00

    # By hand: 2 orders x 1,000.00 USD x 2.0 = 4,000.00 EUR in 10:00-10:01 (without the rates
    # topic: 2,000.00 + 1,000.00 x 0.92 = 2,920.00).
    await eventually(converted_on_both, what="10:00 revenue 4,000.00 over both workers")

    # The rate is on the compacted rates topic once (one worker counted its event), keyed by
    # currency and effective time.
    records = await read_topic(kafka_bootstrap, settings.rates_topic, 1)
    assert [r.key for r in records] == [b"USD|2026-01-05T10:00:00+00:00"]

    # A worker that never sees the rate's input partition (another group, another input
    # topic) has it from the rates topic before it consumes anything.
    other_input = f"{names['prefix']}.other-events"
    await ensure_topics(kafka_bootstrap, [TopicSpec(other_input, 1)])
    late = await start_worker(
        make_settings(
            detection=False, input_topics=(other_input,), consumer_group=f"{names['group']}-2"
        )
    )
    assert usd_rate(late) == Decimal("2.0")
