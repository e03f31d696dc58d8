"""Fiscal windows through the broker (`PULSE_FISCAL_CALENDAR=4-4-5:1`, business time zone UTC):
a worker publishes budget variance per fiscal period (`fp`) and year to date (`fytd`) on
`<prefix>.kpi`, restates them after a budget revision, and shows them on /metrics; with a
merge stage, the stage publishes the same company-wide. Figures computed by hand.

Fiscal 2026 starts Monday Dec 29, 2025 (the Monday nearest Jan 1); its P01 runs to Jan 26,
2026 (4 weeks). Cost center `ops`: budget 1,000.00 for FY2026-P01, spent 900.00 in it:
(900 - 1,000) / 1,000 = -0.1. The revision to 750.00 on Jan 28: (900 - 750) / 750 = 0.2.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from kafka_helpers import eventually, produce, scrape
from merge_helpers import read_all

from schemas import KpiRecord
from streams.merge.stage import MergeStage
from streams.settings import Settings
from streams.worker.worker import Worker

CALENDAR = "4-4-5:1"
P01_START = int(datetime(2025, 12, 29, tzinfo=UTC).timestamp())
P01_END = int(datetime(2026, 1, 26, tzinfo=UTC).timestamp())
AS_REPORTED = "-0.1000000000"
RESTATED = "0.2000000000"


def event(kind: str, number: int, at: str, cost_center: str = "ops", **fields: Any) -> bytes:
    return orjson.dumps(
        {
            "type": kind,
            "event_id": f"fiscal-{number}",
            "occurred_at": at,
            "source": "fpa" if kind == "budget_set" else "erp",
            "schema_version": 1,
            "dimensions": {"business_unit": "corp", "region": "de", "cost_center": cost_center},
            "currency": "EUR",
            **fields,
        }
    )


BEFORE = [
    event("budget_set", 1, "2025-12-29T08:00:00Z", period="FY2026-P01", amount="1000.00"),
    event("expense_posted", 2, "2025-12-30T09:00:00Z", category="travel", amount="900.00"),
    # `it` has no budget: this only takes the watermark past the end of P01.
    event("expense_posted", 3, "2026-01-27T09:00:00Z", "it", category="travel", amount="1.00"),
]
REVISION = event("budget_set", 4, "2026-01-28T09:00:00Z", period="FY2026-P01", amount="750.00")
CLOSER = orjson.dumps(  # partition 1's progress past Jan 27 (an event feeding no KPI)
    {
        "type": "shipment_dispatched",
        "event_id": "fiscal-closer",
        "occurred_at": "2026-01-27T09:00:00Z",
        "source": "erp",
        "schema_version": 1,
        "dimensions": {"business_unit": "corp", "region": "de"},
        "order_id": "none",
        "shipment_id": "none",
    }
)
LATER_CLOSER = CLOSER.replace(b"fiscal-closer", b"fiscal-closer-2").replace(b"01-27", b"01-28")


async def p01_records(bootstrap: str, topic: str) -> dict[str, list[dict[str, Any]]]:
    """P01's final budget variance records of `ops` per fiscal window, in order."""
    found: dict[str, list[dict[str, Any]]] = {}
    for record in await read_all(bootstrap, topic):
        KpiRecord.model_validate_json(record.value)
        body = orjson.loads(record.value)
        if (
            body["kpi"] == "budget_variance_ratio"
            and body["dimensions"] == {"cost_center": "ops"}
            and body["window_start"] == P01_START
            and body["final"]
        ):
            found.setdefault(body["window"], []).append(body)
    return found


async def test_a_worker_publishes_and_restates_fiscal_windows(
    kafka_bootstrap: str,
    make_settings: Callable[..., Settings],
    input_topic: Callable[[int], Awaitable[str]],
    start_worker: Callable[[Settings], Awaitable[Worker]],
) -> None:
    topic = await input_topic(1)
    settings = make_settings(fiscal_calendar=CALENDAR)
    worker = await start_worker(settings)
    await produce(kafka_bootstrap, topic, BEFORE)

    async def published(count: int) -> bool:
        found = await p01_records(kafka_bootstrap, settings.kpi_topic)
        return all(len(found.get(w, [])) >= count for w in ("fp", "fytd"))

    await eventually(lambda: published(1), within=60, what="fiscal P01 final on the KPI topic")
    found = await p01_records(kafka_bootstrap, settings.kpi_topic)
    for window in ("fp", "fytd"):
        [first] = found[window]
        assert first["window_end"] == P01_END
        assert (first["value"], first["revision"], first["as_reported"]) == (AS_REPORTED, 1, None)
        assert (first["numerator"], first["denominator"]) == ("-100.00", "1000.00")
    assert "1mo" not in found  # December has no calendar-month budget

    await produce(kafka_bootstrap, topic, [REVISION])
    await eventually(lambda: published(2), within=60, what="fiscal P01 restated")
    found = await p01_records(kafka_bootstrap, settings.kpi_topic)
    for window in ("fp", "fytd"):
        assert [(r["value"], r["revision"], r["as_reported"]) for r in found[window]] == [
            (AS_REPORTED, 1, None),
            (RESTATED, 2, AS_REPORTED),
        ]
    assert sum(worker.state.rejected.values()) == 0

    # /metrics shows the last closed fiscal period (P01, restated) and its year to date.
    async def shown() -> bool:
        metrics = await scrape(worker.server.url)
        return all(
            metrics.get(
                (
                    "pulse_budget_variance_ratio",
                    frozenset({"cost_center": "ops", "window": window}.items()),
                )
            )
            == 0.2
            for window in ("fp", "fytd")
        )

    await eventually(shown, within=30, what="P01 on /metrics")


async def test_the_merge_stage_publishes_fiscal_windows_company_wide(
    kafka_bootstrap: str,
    make_settings: Callable[..., Settings],
    input_topic: Callable[[int], Awaitable[str]],
    start_worker: Callable[[Settings], Awaitable[Worker]],
) -> None:
    topic = await input_topic(2)
    settings = make_settings(merge_stage=True, fiscal_calendar=CALENDAR)
    stage = MergeStage(settings, kafka_bootstrap)
    stop = asyncio.Event()
    task = asyncio.create_task(stage.run(stop))
    try:
        await asyncio.wait_for(stage.ready.wait(), 60)
        await start_worker(settings)
        await produce(kafka_bootstrap, topic, BEFORE, partition=0)
        await produce(kafka_bootstrap, topic, [CLOSER], partition=1)

        async def published(count: int) -> bool:
            found = await p01_records(kafka_bootstrap, settings.kpi_topic)
            return all(len(found.get(w, [])) >= count for w in ("fp", "fytd"))

        await eventually(lambda: published(1), within=90, what="P01 final, company-wide")
        await produce(kafka_bootstrap, topic, [REVISION], partition=0)
        await produce(kafka_bootstrap, topic, [LATER_CLOSER], partition=1)
        await eventually(lambda: published(2), within=90, what="P01 restated, company-wide")
        found = await p01_records(kafka_bootstrap, settings.kpi_topic)
        for window in ("fp", "fytd"):
            assert [(r["value"], r["revision"], r["as_reported"]) for r in found[window]] == [
                (AS_REPORTED, 1, None),
                (RESTATED, 2, AS_REPORTED),
            ]
            assert found[window][0]["partitions"] == [f"{topic}[0]", f"{topic}[1]"]
        assert stage.restated == 2
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
