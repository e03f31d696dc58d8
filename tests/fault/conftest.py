"""Fault-test fixtures: Apache Kafka (one node per session, three nodes per module), the
simulated stream, unique names, worker processes, and a report of the measured figures.

Every test here is marked `fault` and compares KPIs with values computed independently from the
produced events, exactly. Workers run as `python -m streams.cli worker` subprocesses, so that
`kill -9` is a real one; their logs are checked for errors at teardown.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from apache_kafka import KafkaCluster
from fault_processes import WorkerProcess
from fault_truth import STREAM, WORKER_ENV, Stream, make_stream

HERE = Path(__file__).parent
FIGURES: list[str] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.fault)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("fault figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Print a measured figure now (without -s) and again in the summary at the end."""
    writer = request.config.pluginmanager.get_plugin("terminalreporter")

    def write(line: str) -> None:
        text = f"[{request.node.name}] {line}"
        FIGURES.append(text)
        if writer is not None:
            writer.write_line(text)

    return write


@pytest.fixture(autouse=True)
def _duration(report: Callable[[str], None]) -> Iterator[None]:
    started = time.monotonic()
    yield
    report(f"duration {time.monotonic() - started:.1f} s")


@pytest.fixture(scope="session")
def single_node() -> Iterator[KafkaCluster]:
    with KafkaCluster(nodes=1) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def three_nodes() -> Iterator[KafkaCluster]:
    """Replication 3 and min.insync.replicas 2 by default for every topic created without an
    explicit replication factor (see `KafkaCluster`)."""
    with KafkaCluster(nodes=3) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def stream() -> Stream:
    """`STREAM` less its fx_rate events, and its truth (computed once per session)."""
    made = make_stream(STREAM)
    assert len(made.messages) >= 100_000
    return made


@pytest.fixture
def names() -> dict[str, str]:
    """This test's topic prefix, input topic and consumer group."""
    tag = uuid.uuid4().hex[:10]
    return {"prefix": f"ft-{tag}", "input": f"ft-{tag}.events", "group": f"ft-{tag}-workers"}


@pytest.fixture
def make_worker(
    names: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., WorkerProcess]]:
    """Workers of this test's group (not started); killed at teardown if still running, and any
    error a lifetime logged fails the test."""
    made: list[WorkerProcess] = []

    def make(name: str, bootstrap: str, **env: str) -> WorkerProcess:
        settings = {
            **WORKER_ENV,
            "PULSE_KAFKA_BOOTSTRAP": bootstrap,
            "PULSE_TOPIC_PREFIX": names["prefix"],
            "PULSE_INPUT_TOPICS": names["input"],
            "PULSE_CONSUMER_GROUP": names["group"],
            **env,
        }
        worker = WorkerProcess(name, settings, tmp_path / f"{name}.log")
        made.append(worker)
        return worker

    yield make
    for worker in made:
        if worker.alive():
            worker.kill()
    if request.node.get_closest_marker("expect_errors"):
        return
    problems = {w.name: w.problems() for w in made if w.problems()}
    assert not problems, f"workers logged errors: {problems}"
