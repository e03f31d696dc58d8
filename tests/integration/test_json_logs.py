"""`PULSE_LOG_FORMAT=json` on a real `pulse worker` process: every line it writes to stderr,
from start to a clean stop on SIGTERM, is one JSON object with time, level, logger and message.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime

import pytest
from events import order
from kafka_helpers import produce

from streams.kafka.embedded import free_port

pytestmark = pytest.mark.any_broker  # what is checked does not depend on the broker


def wait_ready(port: int, within: float) -> dict[str, object]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:  # 503 until the partition is assigned, recovered and caught up
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                answer: dict[str, object] = json.load(r)
                return answer
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"/readyz not 200 within {within} s")


def test_a_worker_with_json_logs_writes_only_json_lines_to_stderr(
    kafka_bootstrap: str, names: dict[str, str], input_topic_sync: str
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
    env |= {
        "PULSE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "PULSE_TOPIC_PREFIX": names["prefix"],
        "PULSE_INPUT_TOPICS": input_topic_sync,
        "PULSE_CONSUMER_GROUP": names["group"],
        "PULSE_METRICS_PORT": str(port),
        "PULSE_LOG_FORMAT": "json",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_ready(port, 60)
        # Events without a Kafka key: the worker warns once for the topic (PULSE_KEY_POLICY=warn).
        values = [order(f"o-{i}", "10:00:00", "10.00") for i in range(5)]
        asyncio.run(produce(kafka_bootstrap, input_topic_sync, values))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                if 'pulse_unkeyed_events_total{topic="' in r.read().decode():
                    break
            time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        process.kill()
        stderr = process.stderr.read() if process.stderr else ""

    lines = stderr.splitlines()
    assert lines, "the worker logged nothing"
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"stderr line {number} is not JSON: {line!r}") from None
    for record in records:
        assert isinstance(record, dict)
        assert {"time", "level", "logger", "message"} <= record.keys(), record
        assert datetime.fromisoformat(record["time"]).utcoffset() is not None
        assert record["level"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
    messages = [r["message"] for r in records]
    assert any("worker stopped cleanly" in m for m in messages), messages[-5:]
    assert any(r["level"] == "WARNING" and input_topic_sync in r["message"] for r in records), (
        "the unkeyed-topic warning"
    )
    assert not [r for r in records if r["level"] in {"ERROR", "CRITICAL"}]
