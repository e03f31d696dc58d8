"""How every `pulse` command writes its log: plain text lines (the default) or, with
`PULSE_LOG_FORMAT=json`, one JSON object per line for a log collector (Loki, Elasticsearch,
Cloud Logging) to parse without a grok pattern.

A JSON line has `time` (RFC 3339, UTC, milliseconds), `level`, `logger` and `message` (the
message with its arguments filled in), plus `exception` (the traceback text) when the record
carries one. Both go to stderr. Lines written outside any log record (a bad setting, a fatal
stop: `say`) follow the same format, so that with `json` every line on stderr parses.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime
from typing import Literal

import orjson

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (a traceback's newlines are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # default=str: a message argument orjson cannot encode is already text in `message`.
        return orjson.dumps(line, default=str).decode()


def configure_logging(level: str, log_format: LogFormat) -> None:
    """Send log records at `level` and above to stderr in `log_format`, replacing any handler
    the root logger had. In JSON, Python's warnings are logged too, so stderr stays JSON."""
    handler = logging.StreamHandler(sys.stderr)
    text = logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(JsonFormatter() if log_format == "json" else text)
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.captureWarnings(log_format == "json")


def say(text: str, *, logged: bool = False) -> None:
    """Tell the operator `text` on stderr, outside the logging setup (which a bad setting may
    have prevented): plain, or as a CRITICAL JSON record when `PULSE_LOG_FORMAT` is `json`.
    `logged`: the same was just logged, so JSON adds nothing (text keeps its summary line)."""
    if os.environ.get("PULSE_LOG_FORMAT") != "json":
        sys.stderr.write(text + "\n")
    elif not logged:
        record = logging.LogRecord("pulse", logging.CRITICAL, __file__, 0, text, None, None)
        sys.stderr.write(JsonFormatter().format(record) + "\n")
