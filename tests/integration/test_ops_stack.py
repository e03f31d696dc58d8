"""The ops-center stack end to end, on the real servers: a worker on the broker fed by the
simulator, a real Prometheus scraping it with the generated config and rules, a real Alertmanager
with the generated routing, and a webhook receiver standing in for the pager and the chat.

Asserts that (a) every query of every generated dashboard panel returns data, (b) the recorded
ratio KPIs equal the worker's own values, and (c) an injected revenue dip reaches the webhook as
a firing alert with the right labels and annotations, then as resolved.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from live import FLAT_DAY
from ops_helpers import (
    ROOT,
    RULES,
    Server,
    Webhook,
    alertmanager,
    alertmanager_config_for,
    get_json,
    prometheus,
    webhook_receiver,
)

from streams.core.catalog import CATALOG
from streams.settings import Settings
from streams.tools.incidents import Incident
from streams.tools.publisher import PublishStats, publish
from streams.tools.simulator import SimulationConfig, simulate
from streams.worker.worker import Worker

pytestmark = pytest.mark.any_broker  # what is checked does not depend on the broker

DASHBOARDS = ROOT / "grafana/dashboards"
RATE = 10.0
"""Events per second of the dense stretch (half the `pulse demo --incidents` rate)."""
DENSE = timedelta(hours=7)
"""Longer than the live horizon of minute series (400 minutes): they see dense data only."""
HISTORY_DAYS = 33
"""Quiet history so that days, a month and 30-day ratios have closed and been scored (as in
`pulse demo`, but the detectors watch all of it, so hourly and daily series alert on the jump
to the dense rate: background noise for the test, which follows one series)."""
DIP_KPIS = ("revenue", "average_order_value")
"""What the EMEA dip (order amounts 70% lower) pages as: after this test's sparse history a
minute of EMEA revenue has a band about as wide as its level, so its fall may stay inside it; the
order value's fall (retail EMEA's, offline) leaves its band at the dip's second minute."""
SeriesKey = tuple[str, str, tuple[tuple[str, str], ...]]


def _prometheus_config(worker: Worker, am: Server) -> dict[str, Any]:
    """The generated deploy/prometheus/prometheus.yml, pointed at this test's worker and
    Alertmanager and scraping every second."""
    config: dict[str, Any] = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(RULES / Path(f).name) for f in config["rule_files"]]
    config["alerting"]["alertmanagers"][0]["static_configs"] = [
        {"targets": [am.url.removeprefix("http://")]}
    ]
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "pulse")
    job["static_configs"] = [{"targets": [worker.server.url.removeprefix("http://").split("/")[0]]}]
    job.pop("file_sd_configs", None)
    return config


async def _query(server: Server, expr: str) -> list[dict[str, Any]]:
    url = f"{server.url}/api/v1/query?query={urllib.parse.quote(expr)}"
    answer = await get_json(url)
    assert answer["status"] == "success", (expr, answer)
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


async def _until(check: Callable[[], Awaitable[Any]], within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if found := await check():
            return found
        await asyncio.sleep(0.5)
    raise AssertionError(f"{what}: not within {within} s")


def _panel_queries() -> list[tuple[str, str, str]]:
    """(board, panel title, expr) of every panel target of every committed board, with the
    board's template variables at their defaults (All = `.*`), as a user opening it sees."""
    found: list[tuple[str, str, str]] = []
    files = sorted(DASHBOARDS.glob("*.json"))
    assert files, "no generated dashboards"
    for path in files:
        board = json.loads(path.read_text())
        values = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}
        for var in board.get("templating", {}).get("list", []):
            current = var.get("current", {}).get("value")
            if isinstance(current, list):
                current = current[0] if current else None
            if current in (None, "", "$__all") or (var.get("includeAll") and current == "All"):
                current = var.get("allValue") or ".*"
            values[var["name"]] = str(current)
        for panel in _panels(board.get("panels", [])):
            for target in panel.get("targets", []):
                expr = target.get("expr")
                if not expr:
                    continue
                text = re.sub(
                    r"\$\{(\w+)(?::\w+)?\}|\$(\w+)",
                    lambda m, values=values: values.get(m.group(1) or m.group(2), m.group(0)),  # type: ignore[misc]
                    expr,
                )
                found.append((board["uid"], panel.get("title", "?"), text))
    return found


def _panels(panels: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _labels_of(sample: dict[str, Any]) -> frozenset[tuple[str, str]]:
    return frozenset((k, v) for k, v in sample["metric"].items() if k not in ("instance", "job"))


def _worker_ratios(worker: Worker) -> dict[tuple[str, frozenset[tuple[str, str]]], Decimal]:
    """The worker's own ratio values, keyed like the recorded series."""
    kinds = {k.name: k for k in CATALOG.kpis}
    values = {}
    for v in worker.state.latest_values():
        ratio = kinds[v.kpi].kind in (
            "ratio",
            "cumulative_ratio",
            "trailing_ratio",
            "period_variance",
        )
        if ratio and v.value is not None:  # None: parts only, no value recorded either
            values[(v.kpi, frozenset((*v.labels, ("window", v.window))))] = v.value
    return values


async def test_dashboards_recorded_kpis_and_an_incident_through_prometheus_and_alertmanager(
    make_settings: Callable[..., Settings],
    start_worker: Callable[[Settings], Awaitable[Worker]],
    input_topic: Callable[[int], Awaitable[str]],
    kafka_bootstrap: str,
    tmp_path: Path,
) -> None:
    topic = await input_topic(3)
    settings = make_settings(
        detection=True,
        stale_after_seconds=7 * 86400.0,  # the stream stops and resumes on purpose
        # The stream stops at `hold`: windows then close only as far as the newest event less
        # the largest arrival lag of the active sources (a source stays active, holding by its
        # lag, up to PULSE_SOURCE_IDLE_SECONDS, 300 s by default); a minute lets the dip's
        # windows close before the stream resumes.
        source_idle_seconds=60.0,
        max_event_bytes=65536,
    )
    worker = await start_worker(settings)
    watch = worker.watch
    assert watch is not None
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    dense_from = now - DENSE
    # The stream holds (stops) at `hold`, 6 minutes into a revenue dip in EMEA, so the worker's
    # alert stays open while Prometheus and Alertmanager take it up; then the hour after the dip
    # follows, and the worker resolves it (a minute series that adapted to the dip can first
    # see the return as a rise: the alert stays open through it).
    hold = now - timedelta(minutes=60)
    dip = Incident(
        "dip",
        "revenue",
        (hold - timedelta(minutes=6)).timestamp(),
        hold.timestamp(),
        0.7,
        (("region", "emea"),),
    )
    history = SimulationConfig(
        start=dense_from - timedelta(days=HISTORY_DAYS),
        seed=8,
        rate=0.05,
        duration=HISTORY_DAYS * 86400.0,
        daily_amplitude=FLAT_DAY,
    )
    before_hold = SimulationConfig(
        start=dense_from,
        seed=9,
        rate=RATE,
        duration=(hold - dense_from).total_seconds(),
        incidents=(dip,),
        daily_amplitude=FLAT_DAY,
    )
    after_hold = SimulationConfig(
        start=hold,
        seed=10,
        rate=RATE,
        duration=(now - hold).total_seconds(),
        daily_amplitude=FLAT_DAY,
    )

    def open_alerts() -> list[SeriesKey]:
        return [key for key, _ in watch.active()]

    def dip_alerts() -> list[SeriesKey]:
        """Open 1m alerts of EMEA revenue or average order value, the region roll-up first."""
        keys = [
            key
            for key, _ in watch.active()
            if key[0] in DIP_KPIS and key[1] == "1m" and ("region", "emea") in key[2]
        ]
        return sorted(keys, key=lambda k: len(k[2]))

    async with webhook_receiver() as hook:
        with (
            alertmanager(alertmanager_config_for(hook.url), tmp_path / "am") as am,
            prometheus(_prometheus_config(worker, am), tmp_path / "prom") as prom,
        ):
            # 1. History and the dense stretch up to `hold`, ending inside the dip.
            stats = PublishStats()
            published_at = time.time()
            await publish(
                kafka_bootstrap,
                topic,
                (m for c in (history, before_hold) for m in simulate(c)),
                paced=False,
                stats=stats,
            )
            dip_published = time.time()
            # How soon depends on how fast this machine reads the history: wait while the
            # worker is still reading, then give it a minute past the last event.
            await _until(
                _async(lambda: dip_alerts() or _read(worker) == stats.sent),
                900,
                "the worker reading up to the dip",
            )
            await _until(_async(dip_alerts), 60, "the worker opening the dip")
            worker_opened = time.time()
            # The alert opens while the worker still reads the dip's last minutes; once it has
            # read up to the hold nothing more closes, and the alerts open then stay open.
            await _until(
                _async(lambda: _read(worker) == stats.sent), 120, "the worker reading to the hold"
            )
            held = dip_alerts()
            assert held, "every EMEA alert of the dip closed before the hold"
            # One incident, one page: the root of the dip's incident is what fires. The root
            # rule (docs/anomaly-detection.md) names e.g. revenue{region=emea} once the EMEA and
            # total alerts have opened while the first root is open; if the first root (a
            # finer EMEA scope) resolves before they open, it stays the root. So: a 1m scope of
            # DIP_KPIS, EMEA's alerts related to it (after the hold nothing opens: no more moves).
            incidents = {watch.series[key].incident for key in held}
            roots = [
                key
                for key, s in watch.series.items()
                if s.incident in incidents and s.role == "root" and key[0] in DIP_KPIS
                if key[1] == "1m"
            ]
            assert roots, (
                f"no revenue or order value alert is the root of the dip's incident: {held}"
            )
            series = roots[0]

            # 2. While the alert is pending: every panel query has data, recorded = worker.
            await _until(lambda: _scraped_everything(prom, worker), 60, "Prometheus catching up")
            empty = [
                (board, title, expr)
                for board, title, expr in _panel_queries()
                if not await _query(prom, expr)
            ]
            assert not empty, "panel queries without data:\n" + "\n".join(map(str, empty))
            await _recorded_equal_worker(prom, worker)

            # 3. The alert reaches the webhook, firing.
            assert series in open_alerts(), "the dip's alert closed while the stream held"
            try:
                alert = await _until(
                    _async(lambda: _find(hook, "firing", series)), 120, "the firing alert"
                )
            except AssertionError as missing:
                raise AssertionError(f"{missing}\n{await _diagnose(prom, hook, worker)}") from None
            fired_at = hook_time(hook, alert)
            _check_firing(alert, worker, hook, series)

            # 4. The stream goes on without the dip: the worker resolves, so does the webhook.
            await publish(kafka_bootstrap, topic, simulate(after_hold), paced=False)
            await _until(
                _async(lambda: series not in open_alerts()), 120, "the worker resolving the dip"
            )
            worker_resolved = time.time()
            resolved = await _until(
                _async(lambda: _find(hook, "resolved", series)), 150, "the resolved alert"
            )
            resolved_at = hook_time(hook, resolved)

    sys.stderr.write(
        f"\nops stack: {stats.sent} events published in {dip_published - published_at:.1f} s; "
        f"worker opened the dip {worker_opened - dip_published:.1f} s after its events were "
        f"published; webhook firing {fired_at - worker_opened:.1f} s after that "
        f"({fired_at - dip_published:.1f} s from publication); resolved at the webhook "
        f"{resolved_at - worker_resolved:.1f} s after the worker closed it\n"
    )


def _check_firing(alert: dict[str, Any], worker: Worker, hook: Webhook, key: SeriesKey) -> None:
    """Labels, annotations and receiver of the dip's firing alert, from the worker's series."""
    kpi, window, dims = key
    labels = alert["labels"]
    expected = {"alertname": "PulseKpiAnomaly", "kpi": kpi, "window": window, **dict(dims)}
    assert expected.items() <= labels.items()
    assert set(labels) - set(expected) == {
        "severity",
        "domain",
        "instance",
        "job",
        "incident",
        "incident_role",
    }
    assert labels["severity"] in ("warning", "critical")
    assert labels["incident_role"] == "root"
    assert worker.watch is not None
    assert labels["incident"] == worker.watch.series[key].incident
    entry = next(k for k in CATALOG.kpis if k.name == kpi)
    assert labels["domain"] == entry.domain == "sales"
    title = f"{entry.title} ({window})"
    where = "".join(f" {name}={value}" for name, value in dims)  # catalog order: unit, region
    notes = alert["annotations"]
    assert notes["summary"] == f"{title}{where} is outside its expected band"
    # the worker's own view of the series (no window closes while the stream holds)
    assert worker.watch is not None
    series = worker.watch.series[key]
    assert series.score is not None
    assert notes["description"] == (
        f"{title}{where} is {series.observed:.2f}; expected {series.score.lower:.2f} to "
        f"{series.score.upper:.2f} (worker {labels['instance']}; the anomaly topic carries the "
        "explanation)."
    )
    link = "".join(f"&var-{name}={value}" for name, value in dims)
    assert notes["dashboard"] == f"http://localhost:3000/d/pulse-sales?var-window=1m{link}"
    assert notes["runbook_url"] == "docs/runbook.md#pulsekpianomaly"
    receiver = {"critical": "pager", "warning": "chat"}[labels["severity"]]
    assert any(r == receiver for r, _, a in hook.alerts() if a is alert)


async def _diagnose(prom: Server, hook: Webhook, worker: Worker) -> str:
    """What each stage holds about the dip's anomalies, for a failure message."""
    assert worker.watch is not None
    open_ = [key for key, _ in worker.watch.active() if key[0] in DIP_KPIS]
    kpis = "|".join(DIP_KPIS)
    alerts = await _query(prom, f'ALERTS{{alertname="PulseKpiAnomaly", kpi=~"{kpis}"}}')
    active = await _query(prom, f'pulse_kpi_anomaly_active{{kpi=~"{kpis}", severity!="none"}}')
    return (
        f"worker open: {open_}\nPrometheus ALERTS: {[a['metric'] for a in alerts]}\n"
        f"scraped active: {[a['metric'] for a in active]}\n"
        f"webhook: {[(r, a['status'], a['labels']) for r, _, a in hook.alerts()]}"
    )


def _async(check: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
    async def run() -> Any:
        return check()

    return run


def _find(hook: Webhook, status: str, key: SeriesKey) -> dict[str, Any] | None:
    """The webhook's alert of status `status` on exactly the worker's series `key`."""
    kpi, window, dims = key
    wanted = {"alertname": "PulseKpiAnomaly", "kpi": kpi, "window": window, **dict(dims)}
    dimension_names = {"business_unit", "region"}
    for _, _, alert in hook.alerts():
        labels = alert["labels"]
        if (
            alert["status"] == status
            and wanted.items() <= labels.items()
            and dimension_names & set(labels) == {name for name, _ in dims}
        ):
            return alert
    return None


def hook_time(hook: Webhook, alert: dict[str, Any]) -> float:
    return next(at for _, at, a in hook.alerts() if a is alert)


def _kpi_of(recorded: str) -> tuple[str, int]:
    """KPI name and seconds per catalog unit of a recorded series: `kpi:pulse_dso_seconds:ratio`
    is KPI `dso_days`, exported in seconds (Prometheus' base unit)."""
    family = recorded.split(":")[1].removeprefix("pulse_")
    days = family.removesuffix("_seconds") + "_days"
    if family.endswith("_seconds") and any(k.name == days for k in CATALOG.kpis):
        return days, 86400
    return family, 1


def _read(worker: Worker) -> int:
    """Messages the worker has read: counted or rejected."""
    return sum(worker.state.processed.values()) + sum(worker.state.rejected.values())


async def _scraped_everything(prom: Server, worker: Worker) -> bool:
    """True once Prometheus has scraped the worker's final counts (nothing new is coming)."""
    counted = sum(worker.state.processed.values())
    result = await _query(prom, "sum(pulse_events_processed_total)")
    return (
        bool(result)
        and float(result[0]["value"][1]) == counted
        and sum(behind for *_, behind in worker.lag()) == 0
    )


async def _recorded_equal_worker(prom: Server, worker: Worker) -> None:
    """(b): every recorded ratio equals the worker's own value (one worker: its partial sums
    are the whole), and the company totals equal Σ numerator / Σ denominator of its values."""
    await asyncio.sleep(3)  # a few evaluations after the last scrape
    own = _worker_ratios(worker)
    recorded = await _query(prom, '{__name__=~"kpi:pulse_.+:ratio"}')
    assert len(recorded) >= 100, len(recorded)
    compared = 0
    for sample in recorded:
        kpi, per_unit = _kpi_of(sample["metric"]["__name__"])
        labels = _labels_of(sample) - {("__name__", sample["metric"]["__name__"])}
        expected = own.get((kpi, labels))
        assert expected is not None, (kpi, labels)
        got = float(sample["value"][1]) / per_unit
        assert abs(got - float(expected)) <= 1e-9 * max(1.0, abs(float(expected))), (
            kpi,
            labels,
            got,
            expected,
        )
        compared += 1
    assert compared == len(own)
    totals: dict[tuple[str, str], list[Decimal]] = {}
    scale = {k.name: k.scale for k in CATALOG.kpis}
    for v in worker.state.latest_values():
        if v.numerator is not None and v.denominator is not None:
            acc = totals.setdefault((v.kpi, v.window), [Decimal(0), Decimal(0)])
            acc[0] += v.numerator
            acc[1] += v.denominator
    for sample in await _query(prom, '{__name__=~"kpi_total:pulse_.+:ratio"}'):
        kpi, per_unit = _kpi_of(sample["metric"]["__name__"])
        num, den = totals[(kpi, sample["metric"]["window"])]
        expected_total = num * scale[kpi] / den
        got = float(sample["value"][1]) / per_unit
        assert abs(got - float(expected_total)) <= 1e-9 * max(1.0, abs(float(expected_total)))
