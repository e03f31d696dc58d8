"""The one dead-letter path: every rejected message, its original bytes, and why.

A dead-letter record keeps the original key, value and headers byte for byte; the reason and
origin travel as headers of their own (after the original ones) so that the payload can be
replayed as it was:

| header | value |
|---|---|
| `pulse.reason` | one of `streams.errors.REJECT_REASONS` |
| `pulse.detail` | a human-readable explanation |
| `pulse.topic`, `pulse.partition`, `pulse.offset` | where the message was read |
| `pulse.timestamp` | the original record's timestamp (Unix milliseconds) |
| `pulse.rejected_at` | Unix time (seconds) of the rejection |

A dead letter must fit in one Kafka record (`MAX_DEAD_LETTER_BYTES`): a message too large for
that (an input topic may accept up to its own limit, and the headers come on top) keeps the
start of its value and says so: `pulse.truncated` (`1`), `pulse.original_bytes` and
`pulse.original_sha256` (hex of the whole original value), so it is still counted, explained
and recognisable, never lost between two limits.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from streams.core import BadEventGuard
from streams.errors import BAD_INPUT_REASONS, InvalidEvent, RejectReason

Headers = list[tuple[str, bytes]]

MAX_DEAD_LETTER_BYTES = 1_000_000
"""Key, value and headers of one dead letter at most: under the 1,048,588 bytes of
`max.message.bytes` the worker sets on its topics (`streams.kafka.clients.RECORD_LIMIT`), with
room for the record's framing."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    key: bytes | None
    value: bytes | None
    headers: Headers


def dead_letter(
    error: InvalidEvent,
    key: bytes | None,
    value: bytes | None,
    now: float,
    *,
    headers: Sequence[tuple[str, bytes]] = (),
    timestamp_ms: int | None = None,
    max_bytes: int = MAX_DEAD_LETTER_BYTES,
) -> DeadLetter:
    """Build the record for one rejected message; `error` must be `located`. `headers` and
    `timestamp_ms` are the original record's; the value is truncated to fit `max_bytes`."""
    ours: Headers = [
        ("pulse.reason", error.reason.encode()),
        ("pulse.detail", error.detail[:1024].encode()),
        ("pulse.topic", str(error.topic).encode()),
        ("pulse.partition", str(error.partition).encode()),
        ("pulse.offset", str(error.offset).encode()),
    ]
    if timestamp_ms is not None:
        ours.append(("pulse.timestamp", str(timestamp_ms).encode()))
    ours.append(("pulse.rejected_at", f"{now:.3f}".encode()))
    kept = list(headers) + ours
    if value is not None and _size(key, value, kept) > max_bytes:
        digest = hashlib.sha256(value).hexdigest()
        kept += [
            ("pulse.truncated", b"1"),
            ("pulse.original_bytes", str(len(value)).encode()),
            ("pulse.original_sha256", digest.encode()),
        ]
        value = value[: max(0, max_bytes - _size(key, b"", kept))]
    return DeadLetter(key, value, kept)


def _size(key: bytes | None, value: bytes, headers: Headers) -> int:
    """Bytes of a record's key, value and headers (names and values)."""
    return len(key or b"") + len(value) + sum(len(n) + len(v) for n, v in headers)


class DeadLetterPolicy:
    """Counts rejections by reason (into `rejected`) and enforces the bad-event ratio limit."""

    def __init__(self, rejected: Counter[RejectReason], guard: BadEventGuard) -> None:
        self._rejected = rejected
        self._guard = guard

    def record_batch(self, total: int, errors: list[InvalidEvent]) -> None:
        """Count one batch's rejections; raises `BadEventRatioExceeded` past the limit."""
        bad = 0
        for error in errors:
            self._rejected[error.reason] += 1
            bad += error.reason in BAD_INPUT_REASONS
        self._guard.observe(total, bad)
