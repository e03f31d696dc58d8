"""The embedded broker: starts on a free loopback port, answers Kafka, and stops with us."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from streams.errors import BrokerError
from streams.kafka.clients import TopicSpec, ensure_topics
from streams.kafka.embedded import EmbeddedBroker


async def test_embedded_broker_serves_kafka_and_stops() -> None:
    with EmbeddedBroker() as broker:
        assert broker.bootstrap.startswith("127.0.0.1:")
        await ensure_topics(broker.bootstrap, [TopicSpec("smoke", 2)])
        process = broker._process
        assert process is not None
    assert process.poll() is not None, "broker process still running after stop"


def test_broker_dies_with_its_parent_even_on_kill_9() -> None:
    code = (
        "import time; from streams.kafka.embedded import EmbeddedBroker\n"
        "b = EmbeddedBroker(); b.start(); print(b._process.pid, flush=True); time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(child, signal.SIGKILL)
    pytest.fail("embedded broker outlived its parent")


def test_a_taken_port_is_a_clear_error() -> None:
    with EmbeddedBroker() as first, pytest.raises(BrokerError, match="embedded broker"):
        EmbeddedBroker(port=first.port).start(timeout=5)
