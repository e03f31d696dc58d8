"""`pulse worker` as an operator runs it: serves /metrics, /healthz and /readyz, stops on
SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from streams.kafka.clients import new_admin
from streams.kafka.embedded import free_port


def _env(kafka_bootstrap: str, names: dict[str, str], port: int, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
    return env | {
        "PULSE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "PULSE_TOPIC_PREFIX": names["prefix"],
        "PULSE_INPUT_TOPICS": names["input"],
        "PULSE_CONSUMER_GROUP": names["group"],
        "PULSE_METRICS_PORT": str(port),
        **more,
    }


def _topics(kafka_bootstrap: str) -> set[str]:
    async def listed() -> set[str]:
        admin = new_admin(kafka_bootstrap)
        await admin.start()
        try:
            return set(await admin.list_topics())
        finally:
            await admin.close()

    return asyncio.run(listed())


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_worker_serves_health_and_stops_on_a_signal(
    kafka_bootstrap: str,
    names: dict[str, str],
    input_topic_sync: str,
    sig: signal.Signals,
    code: int,
) -> None:
    """SIGTERM (an orchestrator) exits 0, SIGINT (Ctrl-C) 130; both stop cleanly."""
    port = free_port()
    env = _env(kafka_bootstrap, names, port)
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
        process.send_signal(sig)
        assert process.wait(30) == code
    finally:
        process.kill()
        output = process.stdout.read() if process.stdout else ""
    assert "worker stopped cleanly" in output
    # Ours only: aiokafka logs a transient GroupCoordinatorNotAvailable at ERROR while a fresh
    # Apache Kafka creates __consumer_offsets for the first group (and then carries on).
    assert " ERROR streams" not in output


def _run(env: dict[str, str]) -> tuple[int, str, float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def test_a_missing_input_topic_stops_the_worker_and_is_never_created(
    kafka_bootstrap: str, names: dict[str, str]
) -> None:
    """Exit 2 naming the topic; the broker's topic list has neither it nor any topic of ours
    afterwards (both brokers auto-create a topic a metadata request names)."""
    code, output, _ = _run(_env(kafka_bootstrap, names, 0))
    assert code == 2, output
    assert f"input topic '{names['input']}' does not exist" in output
    assert "PULSE_INPUT_TOPICS" in output
    assert "Traceback" not in output
    assert {t for t in _topics(kafka_bootstrap) if t.startswith(names["prefix"])} == set()


def test_a_port_that_cannot_be_bound_fails_before_the_broker_is_touched(
    kafka_bootstrap: str, names: dict[str, str], input_topic_sync: str
) -> None:
    """Exit 2 naming PULSE_METRICS_PORT, and none of the worker's topics created."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code, output, _ = _run(_env(kafka_bootstrap, names, taken.getsockname()[1]))
    assert code == 2, output
    assert "PULSE_METRICS_PORT" in output
    assert "Traceback" not in output
    ours = {t for t in _topics(kafka_bootstrap) if t.startswith(names["prefix"])}
    assert ours == {input_topic_sync}
