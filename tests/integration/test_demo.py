"""`pulse demo` as a user runs it: a subprocess, its output, its /metrics, its exit."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.broker import EmbeddedBroker


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
        url = None
        summaries = 0
        seen_revenue_after = None
        for line in _lines(process):
            if match := re.search(r"metrics: (http://\S+)", line):
                url = match.group(1)
            if "events/s" in line:
                summaries += 1
                assert url is not None
                if seen_revenue_after is None and _revenue_series(url) > 0:
                    seen_revenue_after = time.monotonic() - started
        assert process.wait(30) == 0
    finally:
        process.kill()
    assert url is not None, "the demo never printed where /metrics is"
    assert summaries >= 3
    assert seen_revenue_after is not None, "no revenue series on /metrics"
    assert seen_revenue_after < 60


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
        assert process.wait(30) == 0
    finally:
        process.kill()
    assert "stopped cleanly" in rest[-1]
    assert not [line for line in rest if " ERROR " in line], "errors while shutting down"
    # The embedded broker went away with the demo: its port is free again.
    replacement = EmbeddedBroker(port=port)
    replacement.start(timeout=10)
    replacement.stop()
