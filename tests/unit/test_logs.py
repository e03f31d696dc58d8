"""PULSE_LOG_FORMAT: text by default; json writes one parseable object per record."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import UTC, datetime

import orjson
import pytest

from streams.errors import ConfigError
from streams.logs import JsonFormatter
from streams.settings import load_settings


def record_with(exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc else None
    return logging.LogRecord(
        "streams.worker", logging.WARNING, __file__, 1, "lag %d on %s", (7, "t[0]"), exc_info
    )


def test_a_record_is_one_line_of_json_with_time_level_logger_and_message():
    record = record_with()
    record.created = 1_709_294_400.25  # 2024-03-01T12:00:00.250Z, by hand

    line = JsonFormatter().format(record)

    assert "\n" not in line
    assert orjson.loads(line) == {
        "time": "2024-03-01T12:00:00.250+00:00",
        "level": "WARNING",
        "logger": "streams.worker",
        "message": "lag 7 on t[0]",
    }
    assert datetime.fromisoformat(orjson.loads(line)["time"]).tzinfo == UTC


def test_an_exception_travels_as_its_traceback_text_on_the_same_line():
    try:
        raise ValueError("bad offset\nsecond line")
    except ValueError as exc:
        line = JsonFormatter().format(record_with(exc))

    assert "\n" not in line
    parsed = orjson.loads(line)
    assert parsed["exception"].startswith("Traceback (most recent call last):\n")
    assert parsed["exception"].endswith("ValueError: bad offset\nsecond line")


def test_the_format_is_text_unless_set_and_a_wrong_one_is_refused(monkeypatch):
    for name in [n for n in os.environ if n.startswith("PULSE_")]:
        monkeypatch.delenv(name)
    assert load_settings().log_format == "text"
    monkeypatch.setenv("PULSE_LOG_FORMAT", "json")
    assert load_settings().log_format == "json"
    monkeypatch.setenv("PULSE_LOG_FORMAT", "yaml")
    with pytest.raises(ConfigError, match="PULSE_LOG_FORMAT"):
        load_settings()


def test_a_bad_setting_with_json_logs_is_told_as_one_json_line():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
    env |= {"PULSE_LOG_FORMAT": "json", "PULSE_METRICS_PROT": "9464"}
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    record = orjson.loads(line)
    assert record["level"] == "CRITICAL"
    expected = "PULSE_METRICS_PROT is no setting (did you mean PULSE_METRICS_PORT?)"
    assert expected in record["message"]
