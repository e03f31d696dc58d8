"""Instants as people write them: the one parser of times given on the command line, in incident
files and in the CSV files of `pulse detect`, `pulse report` and `pulse evaluate --series`.

(Events on Kafka are parsed by their contract, `schemas/`, which is stricter.)
"""

from __future__ import annotations

import math
import re
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

from streams.errors import BadInstant

UTC_ZONE = ZoneInfo("UTC")
_EPOCH = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def parse_instant(
    text: str,
    zone: tzinfo | None = UTC_ZONE,
    *,
    after: float = -math.inf,
    epoch: bool = True,
) -> float:
    """Epoch seconds of an RFC 3339 / ISO 8601 time, or (with `epoch`) of epoch seconds as given.

    A time without a zone is read in `zone`, or refused when `zone` is None; when it is ambiguous
    (a local hour repeated by a daylight-saving change), its second occurrence is taken if only
    that one is after `after`. Raises `BadInstant` (a ValueError) with a message meant for a person.
    """
    text = text.strip()
    if epoch and _EPOCH.fullmatch(text):
        seconds = float(text)
        if not math.isfinite(seconds):
            raise BadInstant(f"timestamp {text!r} is out of range")
        return seconds
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise BadInstant(
            f"timestamp {text!r} is "
            + (
                "neither ISO 8601 (e.g. 2026-01-05T10:00:00Z) nor epoch seconds"
                if epoch
                else "not ISO 8601 (e.g. 2026-01-05T10:00:00Z)"
            )
        ) from None
    if when.tzinfo is not None:
        return when.timestamp()
    if zone is None:
        raise BadInstant(f"timestamp {text!r} needs a UTC offset, e.g. {text}Z or {text}+01:00")
    first = when.replace(tzinfo=zone).timestamp()
    second = when.replace(tzinfo=zone, fold=1).timestamp()
    return second if first <= after < second else first
