"""The CC-40 case of issue 15 through the broker: a live worker finalizes October, then reads a
budget revision booked to October in November; it restates October on `<prefix>.kpi` as
revision 2 with the as-reported value, both computed by hand."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from kafka_helpers import eventually, produce, scrape
from merge_helpers import read_all

from schemas import KpiRecord
from streams.merge.stage import MergeStage
from streams.settings import Settings
from streams.worker.worker import Worker


def event(kind: str, number: int, at: str, **fields: Any) -> bytes:
    return orjson.dumps(
        {
            "type": kind,
            "event_id": f"cc40-{number}",
            "occurred_at": at,
            "source": "fpa" if kind == "budget_set" else "erp",
            "schema_version": 1,
            "dimensions": {"business_unit": "corp", "region": "de", "cost_center": "CC-40"},
            "currency": "EUR",
            **fields,
        }
    )


BEFORE = [
    event("budget_set", 1, "2026-10-05T09:00:00Z", period="2026-10", amount="60000.00"),
    event("budget_set", 2, "2026-10-20T09:00:00Z", period="2026-10", amount="52000.00"),
    event("expense_posted", 3, "2026-10-21T09:00:00Z", category="travel", amount="27470.00"),
    event("expense_posted", 4, "2026-11-03T09:00:00Z", category="travel", amount="1000.00"),
]
REVISION = event("budget_set", 5, "2026-11-09T09:00:00Z", period="2026-10", amount="50000.00")
CLOSER = orjson.dumps(  # partition 1's progress past November 3 (an event feeding no KPI)
    {
        "type": "shipment_dispatched",
        "event_id": "cc40-closer",
        "occurred_at": "2026-11-03T09:00:00Z",
        "source": "erp",
        "schema_version": 1,
        "dimensions": {"business_unit": "corp", "region": "de"},
        "order_id": "none",
        "shipment_id": "none",
    }
)
LATER_CLOSER = CLOSER.replace(b"cc40-closer", b"cc40-closer-2").replace(b"11-03", b"11-09")
OCTOBER = 1_790_812_800  # 2026-10-01T00:00:00Z (business time zone UTC)
# 27,470 / 52,000 - 1 = -0.47173076923... (10 places, half-even); 27,470 / 50,000 - 1 = -0.4506.
AS_REPORTED = "-0.4717307692"
RESTATED = "-0.4506000000"


async def october_records(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """October's final budget variance records, in order (one key: one partition)."""
    found: list[dict[str, Any]] = []
    for record in await read_all(bootstrap, topic):
        KpiRecord.model_validate_json(record.value)
        body = orjson.loads(record.value)
        if (body["kpi"], body["window_start"], body["final"]) == (
            "budget_variance_ratio",
            OCTOBER,
            True,
        ):
            found.append(body)
    return found


async def test_a_budget_revision_after_october_is_final_restates_october(
    kafka_bootstrap: str,
    make_settings: Callable[..., Settings],
    input_topic: Callable[[int], Awaitable[str]],
    start_worker: Callable[[Settings], Awaitable[Worker]],
) -> None:
    topic = await input_topic(1)
    settings = make_settings()
    worker = await start_worker(settings)
    await produce(kafka_bootstrap, topic, BEFORE)

    async def published(count: int) -> bool:
        return len(await october_records(kafka_bootstrap, settings.kpi_topic)) >= count

    await eventually(lambda: published(1), within=60, what="October final on the KPI topic")
    [first] = await october_records(kafka_bootstrap, settings.kpi_topic)
    assert (first["value"], first["revision"], first["as_reported"]) == (AS_REPORTED, 1, None)

    await produce(kafka_bootstrap, topic, [REVISION])
    await eventually(lambda: published(2), within=60, what="October restated")
    records = await october_records(kafka_bootstrap, settings.kpi_topic)
    assert [(r["value"], r["revision"], r["as_reported"]) for r in records] == [
        (AS_REPORTED, 1, None),
        (RESTATED, 2, AS_REPORTED),
    ]
    assert sum(worker.state.rejected.values()) == 0

    # /metrics: one material restatement (|-0.4506 - -0.4717307692| = 0.0211... > 0.01), counted
    # once durable; the budget variance shown for October (the last closed month) is restated.
    material = (
        "pulse_restatements_total",
        frozenset({"kpi": "budget_variance_ratio", "material": "true"}.items()),
    )

    async def counted() -> bool:
        return (await scrape(worker.server.url)).get(material) == 1

    await eventually(counted, within=30, what="the restatement counted on /metrics")
    shown = (await scrape(worker.server.url)).get(
        (
            "pulse_budget_variance_ratio",
            frozenset({"cost_center": "CC-40", "window": "1mo"}.items()),
        )
    )
    assert shown == -0.4506


async def test_the_merge_stage_restates_october_company_wide(
    kafka_bootstrap: str,
    make_settings: Callable[..., Settings],
    input_topic: Callable[[int], Awaitable[str]],
    start_worker: Callable[[Settings], Awaitable[Worker]],
) -> None:
    """With a merge stage the worker publishes October's restated partials and the stage
    publishes the company-wide October again: revision 2, the as-reported value beside it."""
    topic = await input_topic(2)
    settings = make_settings(merge_stage=True)
    stage = MergeStage(settings, kafka_bootstrap)
    stop = asyncio.Event()
    task = asyncio.create_task(stage.run(stop))
    try:
        await asyncio.wait_for(stage.ready.wait(), 60)
        await start_worker(settings)
        # Both partitions get every event's time (the stage waits for every source partition).
        await produce(kafka_bootstrap, topic, BEFORE, partition=0)
        await produce(kafka_bootstrap, topic, [CLOSER], partition=1)

        async def published(count: int) -> bool:
            return len(await october_records(kafka_bootstrap, settings.kpi_topic)) >= count

        await eventually(lambda: published(1), within=90, what="October final, company-wide")
        await produce(kafka_bootstrap, topic, [REVISION], partition=0)
        await produce(kafka_bootstrap, topic, [LATER_CLOSER], partition=1)
        await eventually(lambda: published(2), within=90, what="October restated, company-wide")
        records = await october_records(kafka_bootstrap, settings.kpi_topic)
        assert [(r["value"], r["revision"], r["as_reported"]) for r in records] == [
            (AS_REPORTED, 1, None),
            (RESTATED, 2, AS_REPORTED),
        ]
        assert stage.restated == 1
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


# A late expense: October budget 50,000 and 26,000 spent on time give (26,000 - 50,000) / 50,000
# = -0.48 when October is final; a 1,000 expense of Oct 28 booked on Nov 3 (within the 92-day
# horizon) restates it to (27,000 - 50,000) / 50,000 = -0.46, revision 2.
LATE_FLOW_BEFORE = [
    event("budget_set", 101, "2026-10-05T09:00:00Z", period="2026-10", amount="50000.00"),
    event("expense_posted", 102, "2026-10-12T09:00:00Z", category="travel", amount="20000.00"),
    event("expense_posted", 103, "2026-10-26T09:00:00Z", category="travel", amount="6000.00"),
    event("expense_posted", 104, "2026-11-03T09:00:00Z", category="travel", amount="500.00"),
]
LATE_EXPENSE = event(
    "expense_posted", 105, "2026-10-28T10:00:00Z", category="rent", amount="1000.00"
)


async def test_a_late_october_expense_restates_october(
    kafka_bootstrap: str,
    make_settings: Callable[..., Settings],
    input_topic: Callable[[int], Awaitable[str]],
    start_worker: Callable[[Settings], Awaitable[Worker]],
) -> None:
    topic = await input_topic(1)
    settings = make_settings()
    worker = await start_worker(settings)
    await produce(kafka_bootstrap, topic, LATE_FLOW_BEFORE)

    async def published(count: int) -> bool:
        return len(await october_records(kafka_bootstrap, settings.kpi_topic)) >= count

    await eventually(lambda: published(1), within=60, what="October final on the KPI topic")
    # The late expense, then its resend: counted once.
    await produce(kafka_bootstrap, topic, [LATE_EXPENSE, LATE_EXPENSE])
    await eventually(lambda: published(2), within=60, what="October restated")
    records = await october_records(kafka_bootstrap, settings.kpi_topic)
    assert [(r["value"], r["revision"], r["as_reported"]) for r in records] == [
        ("-0.4800000000", 1, None),
        ("-0.4600000000", 2, "-0.4800000000"),
    ]

    async def one_duplicate() -> bool:
        return dict(worker.state.rejected) == {"duplicate": 1}

    await eventually(one_duplicate, within=30, what="the resend dead-lettered as a duplicate")


async def test_the_merge_stage_restates_october_for_a_late_expense(
    kafka_bootstrap: str,
    make_settings: Callable[..., Settings],
    input_topic: Callable[[int], Awaitable[str]],
    start_worker: Callable[[Settings], Awaitable[Worker]],
) -> None:
    """The late expense's partition publishes October's partial again; the stage publishes
    the company-wide October again (the same figures: one cost center, one partition)."""
    topic = await input_topic(2)
    settings = make_settings(merge_stage=True)
    stage = MergeStage(settings, kafka_bootstrap)
    stop = asyncio.Event()
    task = asyncio.create_task(stage.run(stop))
    try:
        await asyncio.wait_for(stage.ready.wait(), 60)
        await start_worker(settings)
        await produce(kafka_bootstrap, topic, LATE_FLOW_BEFORE, partition=0)
        await produce(kafka_bootstrap, topic, [CLOSER], partition=1)

        async def published(count: int) -> bool:
            return len(await october_records(kafka_bootstrap, settings.kpi_topic)) >= count

        await eventually(lambda: published(1), within=90, what="October final, company-wide")
        await produce(kafka_bootstrap, topic, [LATE_EXPENSE], partition=0)
        await produce(kafka_bootstrap, topic, [LATER_CLOSER], partition=1)
        await eventually(lambda: published(2), within=90, what="October restated, company-wide")
        records = await october_records(kafka_bootstrap, settings.kpi_topic)
        assert [(r["value"], r["revision"], r["as_reported"]) for r in records] == [
            ("-0.4800000000", 1, None),
            ("-0.4600000000", 2, "-0.4800000000"),
        ]
        assert stage.restated == 1
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
