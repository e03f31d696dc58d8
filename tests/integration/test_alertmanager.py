"""The generated Alertmanager configuration on a real Alertmanager: routing by severity and the
inhibitions, with alerts posted to its API (as Prometheus does) and a webhook receiver."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ops_helpers import (
    ALERTMANAGER_CONFIG,
    Server,
    Webhook,
    alertmanager,
    alertmanager_config_for,
    binary,
    get_json,
    post_json,
    webhook_receiver,
)

pytestmark = pytest.mark.any_broker  # what is checked does not depend on the broker

REVENUE = {"kpi": "revenue", "window": "1m", "instance": "w1", "job": "pulse"}


def _alert(alertname: str, severity: str, **labels: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "labels": {"alertname": alertname, "severity": severity, **labels},
        "annotations": {"summary": f"{alertname} {severity} {labels}"},
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(minutes=10)).isoformat(),
    }


def test_the_generated_config_passes_amtool_and_routes_by_severity() -> None:
    amtool = binary("amtool")
    check = subprocess.run(
        [amtool, "check-config", str(ALERTMANAGER_CONFIG)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    for labels, receiver in [
        (["severity=critical", "alertname=PulseKpiAnomaly", "kpi=revenue"], "pager"),
        (["severity=warning", "alertname=PulseKpiAnomaly", "kpi=revenue"], "chat"),
        (["severity=critical", "alertname=PulseWorkerDown"], "pager"),
        (["severity=warning", "alertname=PulseDataStale"], "chat"),
    ]:
        routed = subprocess.run(
            [amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", *labels],
            capture_output=True,
            text=True,
            check=False,
        )
        assert routed.stdout.strip() == receiver, (labels, routed.stdout, routed.stderr)


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[tuple[Server, Webhook]]:
    assert shutil.which("prometheus-alertmanager") or binary("prometheus-alertmanager")
    async with webhook_receiver() as hook:
        with alertmanager(alertmanager_config_for(hook.url), tmp_path / "am") as server:
            yield server, hook


async def _delivered(hook: Webhook, receiver: str, within: float = 15.0, **labels: str) -> float:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for name, at, alert in hook.alerts(receiver):
            if name == receiver and labels.items() <= alert["labels"].items():
                return at
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {labels} at {receiver} within {within} s: {hook.deliveries}")


async def _inhibited(server: Server, **labels: str) -> bool:
    for alert in await get_json(f"{server.url}/api/v2/alerts"):
        if labels.items() <= alert["labels"].items():
            return bool(alert["status"]["inhibitedBy"])
    raise AssertionError(f"Alertmanager does not know {labels}")


async def test_critical_pages_warning_chats_and_a_critical_inhibits_its_warning(
    stack: tuple[Server, Webhook],
) -> None:
    server, hook = stack
    emea = {**REVENUE, "business_unit": "retail", "region": "emea"}
    amer = {**REVENUE, "business_unit": "retail", "region": "amer"}
    await post_json(f"{server.url}/api/v2/alerts", [_alert("PulseKpiAnomaly", "critical", **emea)])
    await _delivered(hook, "pager", alertname="PulseKpiAnomaly", region="emea")
    await post_json(
        f"{server.url}/api/v2/alerts",
        [
            _alert("PulseKpiAnomaly", "warning", **emea),  # same series: inhibited
            _alert("PulseKpiAnomaly", "warning", **amer),  # another series: delivered
        ],
    )
    await _delivered(hook, "chat", alertname="PulseKpiAnomaly", region="amer")
    await asyncio.sleep(2)  # a few group intervals: the inhibited one must stay silent
    assert await _inhibited(server, **emea, severity="warning")
    assert not await _inhibited(server, **amer, severity="warning")
    chat = [a["labels"] for _, _, a in hook.alerts("chat")]
    assert all(labels.get("region") != "emea" for labels in chat), chat
    pager = [a["labels"] for _, _, a in hook.alerts("pager")]
    assert all(labels["severity"] == "critical" for labels in pager), pager


async def test_a_stale_source_inhibits_the_kpi_alerts_it_feeds_only(
    stack: tuple[Server, Webhook],
) -> None:
    server, hook = stack
    await post_json(
        f"{server.url}/api/v2/alerts",
        [_alert("PulseDataStale", "warning", source="shipment_delivered")],
    )
    await _delivered(hook, "chat", alertname="PulseDataStale")
    on_time = {**REVENUE, "kpi": "on_time_delivery_ratio", "region": "emea"}
    revenue = {**REVENUE, "region": "emea"}
    threshold = {"kpi": "order_cycle_time_seconds", "window": "1d", "region": "amer"}
    await post_json(
        f"{server.url}/api/v2/alerts",
        [
            _alert("PulseKpiAnomaly", "critical", **on_time),  # fed by shipment_delivered
            _alert("PulseKpiThreshold", "warning", **threshold),  # fed by it too (the join)
            _alert("PulseKpiAnomaly", "critical", **revenue),  # not fed by it
        ],
    )
    await _delivered(hook, "pager", alertname="PulseKpiAnomaly", kpi="revenue")
    await asyncio.sleep(2)
    assert await _inhibited(server, **on_time, alertname="PulseKpiAnomaly")
    assert await _inhibited(server, **threshold, alertname="PulseKpiThreshold")
    assert not await _inhibited(server, **revenue, alertname="PulseKpiAnomaly")
    delivered = {a["labels"].get("kpi") for _, _, a in hook.alerts()}
    assert delivered == {None, "revenue"}  # the stale alert itself, and revenue


async def test_a_root_anomaly_inhibits_the_anomalies_related_to_its_incident_only(
    stack: tuple[Server, Webhook],
) -> None:
    """One incident, one page: the EMEA dip's root pages; revenue{} and the average order
    value of EMEA, related to it, are inhibited; a related alert of another incident whose
    root is not firing is not (the inhibition needs the root and the same incident)."""
    server, hook = stack
    incident = "revenue{region=emea}[1m]@1767225600"
    root = {**REVENUE, "region": "emea", "incident": incident, "incident_role": "root"}
    total = {**REVENUE, "incident": incident, "incident_role": "related"}
    aov = {
        **REVENUE,
        "kpi": "average_order_value",
        "region": "emea",
        "incident": incident,
        "incident_role": "related",
    }
    other = {
        **REVENUE,
        "region": "amer",
        "incident": "revenue{region=amer}[1m]@1767229200",
        "incident_role": "related",
    }
    await post_json(f"{server.url}/api/v2/alerts", [_alert("PulseKpiAnomaly", "critical", **root)])
    await _delivered(hook, "pager", alertname="PulseKpiAnomaly", region="emea")
    await post_json(
        f"{server.url}/api/v2/alerts",
        [
            _alert("PulseKpiAnomaly", "critical", **total),
            _alert("PulseKpiAnomaly", "critical", **aov),
            _alert("PulseKpiAnomaly", "critical", **other),
        ],
    )
    await _delivered(hook, "pager", alertname="PulseKpiAnomaly", region="amer")
    await asyncio.sleep(2)  # a few group intervals: the inhibited ones must stay silent
    assert await _inhibited(server, **total)
    assert await _inhibited(server, **aov)
    assert not await _inhibited(server, **root)
    assert not await _inhibited(server, **other)
    paged = [a["labels"] for _, _, a in hook.alerts("pager")]
    assert all(
        labels.get("incident_role") != "related" or labels["region"] == "amer" for labels in paged
    ), paged
