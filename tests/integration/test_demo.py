"""`pulse demo` as a user runs it: a subprocess, its output, its /metrics, its exit."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from aiokafka import TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from schemas import Anomaly
from streams.kafka.clients import new_consumer
from streams.kafka.embedded import EmbeddedBroker
from streams.tools.incidents import read_ground_truth

pytestmark = pytest.mark.any_broker  # what is checked does not depend on the broker


def _start_demo(*args: str, env_extra: dict[str, str]) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
    env.update(env_extra)
    return subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "demo", "--metrics-port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,  # its own process group, like a command typed in a terminal
    )


def _lines(process: subprocess.Popen[str]) -> Iterator[str]:
    assert process.stdout is not None
    for line in process.stdout:
        sys.stderr.write("demo> " + line)
        yield line.rstrip("\n")


def _revenue_series(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return sum(
        1
        for family in text_string_to_metric_families(text)
        if family.name == "pulse_revenue"
        for _ in family.samples
    )


@pytest.fixture
def demo_env(kafka_bootstrap: str, names: dict[str, str]) -> dict[str, str]:
    """Run the demo on the suite's broker, with this test's own names."""
    return {
        "PULSE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "PULSE_TOPIC_PREFIX": names["prefix"],
        "PULSE_INPUT_TOPICS": names["input"],
        "PULSE_CONSUMER_GROUP": names["group"],
        "PULSE_SESSION_TIMEOUT_MS": "6000",
    }


def test_demo_shows_revenue_within_a_minute_and_stops_by_itself(demo_env: dict[str, str]) -> None:
    started = time.monotonic()
    process = _start_demo("--duration", "30", "--rate", "40", env_extra=demo_env)
    try:
        url = page = None
        page_html = ""
        summaries = 0
        seen_revenue_after = None
        published: list[int] = []
        for line in _lines(process):
            if match := re.search(r"metrics: (http://\S+)", line):
                url = match.group(1)
            if match := re.search(r"page: (http://\S+)", line):
                page = match.group(1)
            if "events/s" in line and page is not None and not page_html:
                with urllib.request.urlopen(page, timeout=5) as response:
                    page_html = response.read().decode()
            if "events/s" in line:
                summaries += 1
                published.append(int(re.search(r"published (\d+)", line).group(1)))  # type: ignore[union-attr]
                assert url is not None
                if seen_revenue_after is None and _revenue_series(url) > 0:
                    seen_revenue_after = time.monotonic() - started
        assert process.wait(30) == 0
    finally:
        process.kill()
    assert url is not None, "the demo never printed where /metrics is"
    assert page == url.removesuffix("metrics"), "the demo printed no page URL beside /metrics"
    assert "/static/page.js" in page_html  # the live page answers there
    assert summaries >= 3
    assert seen_revenue_after is not None, "no revenue series on /metrics"
    assert seen_revenue_after < 60
    # The live stream keeps coming until the end (it once stopped with the backfill).
    assert published[-1] > published[-2] > published[-3]


def test_demo_with_embedded_broker_stops_cleanly_on_ctrl_c() -> None:
    process = _start_demo("--rate", "20", env_extra={})
    try:
        lines = _lines(process)
        broker = next(line for line in lines if "embedded broker at" in line)
        port = int(broker.rsplit(":", 1)[1])
        next(line for line in lines if "metrics: http" in line)
        # A terminal's Ctrl-C signals the whole foreground process group, children included.
        os.killpg(process.pid, signal.SIGINT)
        rest = list(lines)
        assert process.wait(30) == 130  # interrupted, as for any command; and yet clean
    finally:
        process.kill()
    assert "stopped cleanly" in rest[-1]
    assert not [line for line in rest if " ERROR " in line], "errors while shutting down"
    # The embedded broker went away with the demo: its port is free again.
    replacement = EmbeddedBroker(port=port)
    replacement.start(timeout=10)
    replacement.stop()


async def _anomalies(
    bootstrap: str, topic: str, within: float, done: Callable[[list[dict[str, object]]], bool]
) -> list[dict[str, object]]:
    """Poll `topic` until `done(messages read)` (or time runs out); return every message read."""
    consumer = new_consumer(bootstrap, group_id=None)
    await consumer.start()
    messages: list[dict[str, object]] = []
    try:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if topic not in (await consumer.topics()):
                await asyncio.sleep(1)
                continue
            if not consumer.assignment():
                consumer.assign([TopicPartition(topic, 0)])
                await consumer.seek_to_beginning(TopicPartition(topic, 0))
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                messages += [orjson.loads(r.value) for r in records if r.value is not None]
            if done(messages):
                break
    finally:
        await consumer.stop()
    return messages


DIP_KPIS = ("revenue", "average_order_value")
"""What the demo's EMEA revenue dip (order amounts 70% lower) pages as at 1m. Which of the two
depends on the time of day: after the demo's sparse history a minute of EMEA revenue can have a
band about as wide as its level (measured offline for the ops stack test's stream, which has the
same shape: tests/integration/test_ops_stack.py, DIP_KPIS); the order value's fall leaves its
band."""


def _dip_alert(messages: list[dict[str, object]], state: str) -> list[dict[str, object]]:
    return [
        m
        for m in messages
        if m["alert"] == "kpi_anomaly"
        and m["kpi"] in DIP_KPIS
        and m["window"] == "1m"
        and m["state"] == state
        and isinstance(m["dimensions"], dict)
        and m["dimensions"].get("region") == "emea"
    ]


def test_demo_with_incidents_opens_and_resolves_the_injected_dip(
    demo_env: dict[str, str], kafka_bootstrap: str, tmp_path: Path
) -> None:
    truth = tmp_path / "truth.csv"
    process = _start_demo(
        "--incidents",
        "--rate",
        "20",
        "--duration",
        "240",
        "--ground-truth",
        str(truth),
        env_extra=demo_env,
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(_lines(process)), daemon=True)
    reader.start()
    try:
        started = time.monotonic()
        while not truth.exists() and time.monotonic() - started < 60:
            time.sleep(0.5)
        time.sleep(0.5)  # written before anything is published
        incidents = read_ground_truth(truth.open())
        dip = next(i for i in incidents if i.kind == "dip")
        assert dip.dimensions == (("region", "emea"),)
        assert dip.end < time.time()  # the first dip is in the history: seen within seconds

        def in_dip(messages: list[dict[str, object]]) -> list[dict[str, object]]:
            return [
                m
                for m in _dip_alert(messages, "opened")
                if isinstance(m["started_at"], float) and dip.start <= m["started_at"] < dip.end
            ]

        def resolved_too(messages: list[dict[str, object]]) -> bool:
            return any(
                r["dimensions"] == m["dimensions"] and r["started_at"] == m["started_at"]
                for m in in_dip(messages)
                for r in _dip_alert(messages, "resolved")
            )

        topic = f"{demo_env['PULSE_TOPIC_PREFIX']}.anomalies"
        messages = asyncio.run(_anomalies(kafka_bootstrap, topic, 180, resolved_too))
        took = time.monotonic() - started
        url = next(m.group(1) for line in output if (m := re.search(r"metrics: (\S+)", line)))
        with urllib.request.urlopen(url, timeout=5) as response:
            metrics = response.read().decode()
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(30)
        reader.join(10)
    opened = in_dip(messages)
    assert opened, f"no EMEA revenue or order value alert started in the dip within {took:.0f} s"
    assert resolved_too(messages), f"the dip's alert did not resolve within {took:.0f} s"
    # Replaying four hours of history leaves the worker caught up between sends, hours behind
    # real time: no source may be called stale for it, only one the incidents silenced.
    silenced = {i.target for i in incidents if i.kind == "silent_source"}
    stale = {m["source"] for m in messages if m["alert"] == "data_stale"}
    assert stale <= silenced, f"stale while replaying: {sorted(stale - silenced)}"  # type: ignore[type-var]
    first = opened[0]
    # It is anomalous against its band and says where the drop is.
    assert first["observed"] < first["lower"] < first["expected"]  # type: ignore[operator]
    assert first["score"] >= 0.5  # type: ignore[operator]
    explanation = first["explanation"]
    assert isinstance(explanation, dict)
    assert f"{first['kpi']} fell" in explanation["text"]
    Anomaly.model_validate(first)  # the published message follows the schema
    # /metrics shows the band of the company total (PULSE_EXPORT_BANDS=totals; a series with
    # an open alert shows its own too, and the dip's may have resolved by the scrape).
    bands = {
        (family.name, sample.labels.get("business_unit"))
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if family.name in {"pulse_kpi_expected_lower", "pulse_kpi_expected_upper"}
        and sample.labels.get("kpi") == "revenue"
        and "region" not in sample.labels
        and "business_unit" not in sample.labels
        and sample.labels.get("window") == "1m"
    }
    assert {name for name, _ in bands} == {"pulse_kpi_expected_lower", "pulse_kpi_expected_upper"}
