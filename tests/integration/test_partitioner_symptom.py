"""A topic written with librdkafka's default partitioner is noticed: the worker warns, naming it.

Two input topics of 4 partitions with the same 3,000 keyed orders: one placed as librdkafka places
a keyed record by default (CRC32 of the key, computed here with zlib), one by aiokafka's own
partitioner (murmur2, like Java). The worker warns about the first only.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable

import pytest
from events import order
from kafka_helpers import Record, eventually, produce_records

from streams.kafka.clients import TopicSpec, ensure_topics
from streams.kafka.partitioner import MIN_SAMPLES, SAMPLE_EVERY
from streams.settings import Settings
from streams.worker.worker import Worker

PARTITIONS = 4
COUNT = 3000
assert COUNT // SAMPLE_EVERY > MIN_SAMPLES  # enough records to judge


async def test_keys_not_where_murmur2_puts_them_are_warned_about(
    kafka_bootstrap: str,
    make_settings: Callable[..., Settings],
    names: dict[str, str],
    start_worker: Callable[[Settings], object],
    caplog: pytest.LogCaptureFixture,
) -> None:
    crc, murmur = f"{names['input']}-crc32", f"{names['input']}-murmur2"
    await ensure_topics(kafka_bootstrap, [TopicSpec(t, PARTITIONS) for t in (crc, murmur)])
    events = [(f"order-o{i}".encode(), order(f"o{i}", "10:00:10", "1.00")) for i in range(COUNT)]
    by_crc: list[Record] = [
        (key, value, [], (zlib.crc32(key) & 0xFFFFFFFF) % PARTITIONS) for key, value in events
    ]
    by_client: list[Record] = [(key, value, [], None) for key, value in events]
    await produce_records(kafka_bootstrap, crc, by_crc)
    await produce_records(kafka_bootstrap, murmur, by_client)

    caplog.set_level(logging.WARNING, logger="streams.kafka.partitioner")
    worker = await start_worker(make_settings(input_topics=(crc, murmur)))
    assert isinstance(worker, Worker)

    async def read_all() -> bool:
        return worker.consumed >= 2 * COUNT

    await eventually(read_all, within=60, what="every record read")
    warnings = [r.getMessage() for r in caplog.records if "another partitioner" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert f"topic {crc}:" in warnings[0]
    assert worker.partitioner.misplaced[murmur] == 0
    assert worker.partitioner.sampled[murmur] > MIN_SAMPLES
