"""Fixtures for every test: fail any test in which kpi-pulse logged an unexpected error."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

WATCHED_LOGGERS = ("streams", "schemas", "asyncio", "faust", "mode")
"""faust and mode: the merge stage runs on them (a crashed agent is logged there)."""

# The reference ledger (tests/reference) is checked through `pulse backtest` there and end to end
# through the broker in tests/integration; both import its modules by name.
sys.path.insert(0, str(Path(__file__).parent / "reference"))
# The Apache Kafka test harness lives with the other Kafka helpers, outside the wheel.
sys.path.insert(0, str(Path(__file__).parent.parent / "deploy" / "kafka"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "expect_errors: the test provokes errors in the worker's log on purpose"
    )


@pytest.fixture(autouse=True)
def _no_unexpected_errors(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """Like arroyo's: a worker that logs an exception fails the test, even if it kept going."""
    caplog.set_level(logging.INFO, logger="streams")
    yield
    if request.node.get_closest_marker("expect_errors"):
        return
    errors = [
        record
        for record in caplog.get_records("call") + caplog.get_records("teardown")
        if record.levelno >= logging.ERROR and record.name.split(".")[0] in WATCHED_LOGGERS
    ]
    if errors:
        lines = "\n".join(f"{r.name}: {r.getMessage()}" for r in errors)
        pytest.fail(f"unexpected errors logged:\n{lines}")
