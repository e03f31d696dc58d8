"""How every `pulse` command writes its log: plain text lines (the default) or, with
`PULSE_LOG_FORMAT=json`, one JSON object per line for a log collector (Loki, Elasticsearch,
Cloud Logging) to parse without a grok pattern.

A JSON line has `time` (RFC 3339, UTC, milliseconds), `level`, `logger` and `message` (the
message with its arguments filled in), plus `exception` (the traceback text) when the record
carries one. Both go to stderr.
"""

from __future__ import annotations

import logging
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
