"""`pulse worker` as an operator runs it: serves /metrics, /healthz and /readyz, stops on
SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

from streams.kafka.embedded import free_port


def test_worker_serves_health_and_stops_on_sigterm(
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
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        health = None
        while time.monotonic() < deadline and health is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    health = json.load(r)
            except OSError:
                time.sleep(0.2)
        assert health is not None
        assert health["status"] == "ok"
        assert health["running"] is True
        ready = None
        while time.monotonic() < deadline and ready is None:
            try:  # 503 until the partition is assigned, recovered and caught up
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    ready = json.load(r)
            except OSError:
                time.sleep(0.2)
        assert ready is not None
        assert ready["status"] == "ok"
        assert ready["partitions"] == 1
        assert ready["lag_messages"] == 0
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        process.kill()
        output = process.stdout.read() if process.stdout else ""
    assert "worker stopped cleanly" in output
    assert " ERROR " not in output
