"""Every record a real worker writes to `<prefix>.kpi` is valid for schemas/json/kpi.schema.json
(python-jsonschema and ajv in strict mode) and for `schemas.KpiRecord`: the reference ledger
through the broker, closing and final records, ratios with and without a denominator."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import TopicPartition
from jsonschema import Draft202012Validator
from kafka_helpers import eventually, produce
from ledger import SETTINGS_ENV, ledger_lines

from schemas import KpiRecord
from streams.core import ValidationLimits, decode_event
from streams.errors import InvalidEvent
from streams.kafka.clients import new_consumer, topic_partitions
from streams.settings import Settings
from streams.worker.worker import Worker

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "schemas/json/kpi.schema.json"
AJV_DIR = REPO / "deploy/ajv"
# A counted event two days after the ledger: its watermark makes every ledger window final.
PUSHER = orjson.dumps(
    {
        "event_id": "pusher",
        "type": "shipment_dispatched",
        "occurred_at": "2026-11-04T12:00:00+00:00",
        "source": "it",
        "schema_version": 1,
        "dimensions": {"business_unit": "retail", "region": "de"},
        "order_id": "none",
        "shipment_id": "none",
    }
)


def closing_events(ledger: list[bytes]) -> list[bytes]:
    """An order at T, at second 10 of a minute over 400 s after the ledger's newest event (so
    every ledger source is idle and holds no watermark back), then an event at T + 70 s: the
    watermark (T + 65 s) closes the order's minute (end T + 50 s) but leaves it open to late
    events (60 s), so it gets a `final: false` record whatever the batches are."""
    newest = 0.0
    for line in ledger:
        with contextlib.suppress(InvalidEvent):
            event = decode_event(line, ValidationLimits(), time.time())
            newest = max(newest, event.occurred_at.timestamp())
    at = (newest + 400) // 60 * 60 + 70
    pusher = orjson.loads(PUSHER)
    order = {
        **{k: pusher[k] for k in ("source", "schema_version", "dimensions")},
        "event_id": "closer-order",
        "type": "order_placed",
        "occurred_at": datetime.fromtimestamp(at, UTC).isoformat(),
        "order_id": "closer",
        "amount": "10.00",
        "currency": "EUR",
    }
    later = {
        **pusher,
        "event_id": "closer",
        "occurred_at": datetime.fromtimestamp(at + 70, UTC).isoformat(),
    }
    return [orjson.dumps(order), orjson.dumps(later)]


async def every_record(bootstrap: str, topic: str) -> list[bytes]:
    """Every record value on every partition of `topic`, once no more arrive for 2 s."""
    consumer = new_consumer(bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p) for p in range(await topic_partitions(bootstrap, topic))
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        values: list[bytes] = []
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < 2.0:
            for records in (await consumer.getmany(timeout_ms=300)).values():
                idle_since = time.monotonic()
                values += [r.value for r in records if r.value is not None]
        return values
    finally:
        await consumer.stop()


def ajv_invalid(values: list[bytes], folder: Path) -> list[str]:
    folder.mkdir()
    for index, value in enumerate(values):
        (folder / f"{index:05d}.json").write_bytes(value)
    out = folder.parent / "ajv.out"
    with out.open("w") as sink:  # a file, not a pipe: Node drops queued pipe output at exit
        subprocess.run(
            [
                str(AJV_DIR / "node_modules/.bin/ajv"),
                "validate",
                "--spec=draft2020",
                "--strict=true",
                "-c",
                "ajv-formats",
                "-s",
                str(SCHEMA),
                "-d",
                f"{folder}/*.json",
            ],
            cwd=AJV_DIR,
            stdout=sink,
            stderr=subprocess.STDOUT,
            check=False,
            timeout=300,
        )
    lines = out.read_text().splitlines()
    assert sum(line.endswith(" valid") or line.endswith(" invalid") for line in lines) == len(
        values
    ), "ajv did not judge every record (`make schema-tools`?)"
    return [line for line in lines if line.endswith(" invalid")]


async def test_every_kpi_record_of_a_real_worker_matches_the_kpi_schema(
    kafka_bootstrap: str,
    make_settings: Callable[..., Settings],
    input_topic: Callable[[int], Awaitable[str]],
    start_worker: Callable[[Settings], Awaitable[Worker]],
    tmp_path: Path,
) -> None:
    assert (AJV_DIR / "node_modules/.bin/ajv").is_file(), "`make schema-tools` installs ajv"
    lines = [*ledger_lines(), PUSHER]
    topic = await input_topic(1)
    overrides: dict[str, Any] = {
        k.removeprefix("PULSE_").lower(): v for k, v in SETTINGS_ENV.items()
    }
    settings = make_settings(**overrides)
    worker = await start_worker(settings)

    def read() -> int:
        return sum(worker.state.processed.values()) + sum(worker.state.rejected.values())

    async def all_read() -> bool:
        return read() == len(lines) + 2

    # The ledger, then two events after it that leave a window closed but not final; then the
    # pusher makes every window final.
    closers = closing_events(lines[:-1])
    await produce(kafka_bootstrap, topic, [*lines[:-1], *closers])

    async def closer_read() -> bool:
        return read() == len(lines) + 1

    await eventually(closer_read, within=60, what="every ledger line processed")
    # Read now: the topic is compacted, so a window's final record may replace its first. The
    # closer's batch sends its records once its changelog is written: wait for them.
    values: list[bytes] = []

    async def closing_records_sent() -> bool:
        values[:] = await every_record(kafka_bootstrap, settings.kpi_topic)
        return any(not orjson.loads(v)["final"] for v in values)

    await eventually(closing_records_sent, within=30, what="the closer's `final: false` records")
    await produce(kafka_bootstrap, topic, lines[-1:])
    await eventually(all_read, within=60, what="the pusher processed")
    await asyncio.sleep(0.5)  # the batch's KPI records are sent right after its changelog
    values += await every_record(kafka_bootstrap, settings.kpi_topic)

    records = [orjson.loads(v) for v in values]
    assert len(records) > 1000
    # Both kinds of record and both kinds of ratio are in the sample.
    assert {r["final"] for r in records} == {True, False}
    assert any(r["value"] is None and r["denominator"] is not None for r in records)
    assert any(r["numerator"] is not None and r["value"] is not None for r in records)

    validator = Draft202012Validator(orjson.loads(SCHEMA.read_bytes()))
    python_errors = [(r["kpi"], e.message) for r in records for e in validator.iter_errors(r)]
    assert not python_errors, python_errors[:10]
    for value in values:
        KpiRecord.model_validate_json(value)
    invalid = ajv_invalid(values, tmp_path / "records")
    assert not invalid, invalid[:10]
