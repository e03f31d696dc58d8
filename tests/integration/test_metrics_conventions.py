"""A live /metrics as Prometheus' own linter and scrapers see it: `promtool check metrics` finds
nothing to say, OpenMetrics and gzip are negotiated, build and process metrics are there, and the
detector families stay bounded to company totals and open alerts."""

from __future__ import annotations

import asyncio
import gzip
import shutil
from asyncio.subprocess import PIPE, STDOUT
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from kafka_helpers import eventually
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families

from streams.core.catalog import CATALOG
from streams.settings import Settings
from streams.tools.publisher import publish
from streams.tools.simulator import SimulationConfig, simulate
from streams.worker.worker import Worker

pytestmark = pytest.mark.any_broker  # what is checked does not depend on the broker

DIMENSIONS = {d for k in CATALOG.kpis for d in k.dims}
DETECTOR_BANDS = (
    "pulse_kpi_anomaly_score",
    "pulse_kpi_observed",
    "pulse_kpi_expected",
    "pulse_kpi_expected_lower",
    "pulse_kpi_expected_upper",
)


async def _get(url: str, headers: dict[str, str]) -> tuple[dict[str, str], bytes]:
    """Headers and body as sent (no decompression by the client); identity unless asked."""
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.get(url, headers={"Accept-Encoding": "identity", **headers}) as response,
    ):
        assert response.status == 200
        return dict(response.headers), await response.read()


async def test_live_metrics_pass_promtool_and_negotiate_formats(
    make_settings: Callable[..., Settings],
    start_worker: Callable[[Settings], Awaitable[Worker]],
    input_topic: Callable[[int], Awaitable[str]],
    kafka_bootstrap: str,
) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found: `make ops-tools` installs Prometheus")
    topic = await input_topic(1)
    settings = make_settings(detection=True, stale_after_seconds=7 * 86400.0, max_event_bytes=65536)
    worker = await start_worker(settings)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=3)
    # three days at a low rate: every event type, closed business days (DSO/DPO/DIO, cycle-time
    # quantiles) and closed minutes the detectors score
    history = SimulationConfig(start=start, seed=3, rate=0.05, duration=3 * 86400.0)
    stats = await publish(kafka_bootstrap, topic, simulate(history), paced=False)
    assert stats.sent > 10_000

    families: dict[str, str] = {}

    async def scraped_all_kinds() -> bool:
        _, body = await _get(worker.server.url, {})
        families.clear()
        for family in text_string_to_metric_families(body.decode()):
            if family.samples:
                families[family.name] = family.type
        return {"pulse_dso_seconds", "pulse_order_cycle_time_seconds"} <= families.keys() and (
            "pulse_kpi_expected" in families
        )

    await eventually(scraped_all_kinds, within=240, what="day-end KPIs, quantiles and bands")

    # 1. promtool's linter: no message at all (it prints one line per problem)
    _, text = await _get(worker.server.url, {})
    lint = await asyncio.create_subprocess_exec(
        promtool, "check", "metrics", stdin=PIPE, stdout=PIPE, stderr=STDOUT
    )
    said, _ = await lint.communicate(text)
    assert lint.returncode == 0, said.decode()
    assert not said.strip(), said.decode()
    # base units and types: days as seconds, quantiles as a summary
    assert families["pulse_order_cycle_time_seconds"] == "summary"
    assert not any(name.endswith("_days") for name in families)
    assert "pulse_build_info" in families  # an info metric: a gauge of value 1 in text
    assert "process_resident_memory_bytes" in families

    # 2. OpenMetrics when asked for, and gzip when accepted: the same families
    headers, body = await _get(
        worker.server.url,
        {"Accept": "application/openmetrics-text; version=1.0.0", "Accept-Encoding": "gzip"},
    )
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert headers["Content-Encoding"] == "gzip"
    openmetrics = gzip.decompress(body).decode()
    assert openmetrics.endswith("# EOF\n")
    om_names = {f.name for f in parse_om(openmetrics) if f.samples}
    assert {"pulse_dso_seconds", "pulse_events_processed"} <= om_names

    # 3. detector families bounded: company totals and series with an open alert only
    _, body = await _get(worker.server.url, {})
    open_alerts = set()
    bands = []
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            labels = {k: v for k, v in sample.labels.items() if k in DIMENSIONS}
            key = (sample.labels.get("kpi"), sample.labels.get("window"), frozenset(labels.items()))
            if family.name == "pulse_kpi_anomaly_active":
                assert (sample.value, sample.labels["severity"] != "none") == (1, True)
                open_alerts.add(key)
            elif family.name in DETECTOR_BANDS:
                bands.append(key)
    assert bands, "no company-total band exported"
    assert all(not dims or key in open_alerts for key in bands for dims in [key[2]])
    watched = len(worker.watch.series) if worker.watch else 0
    assert len(bands) < len(DETECTOR_BANDS) * watched  # fewer than every watched series
