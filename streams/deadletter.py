"""The one dead-letter path: every rejected message, its original bytes, and why.

A dead-letter record keeps the original key and value byte for byte; the reason and origin travel
as headers so that the payload can be replayed as it was:

| header | value |
|---|---|
| `pulse.reason` | one of `streams.errors.REJECT_REASONS` |
| `pulse.detail` | a human-readable explanation |
| `pulse.topic`, `pulse.partition`, `pulse.offset` | where the message was read |
| `pulse.rejected_at` | Unix time (seconds) of the rejection |
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.core import BadEventGuard, WorkerState
from streams.errors import BAD_INPUT_REASONS, InvalidEvent

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    key: bytes | None
    value: bytes | None
    headers: Headers


def dead_letter(
    error: InvalidEvent, key: bytes | None, value: bytes | None, now: float
) -> DeadLetter:
    """Build the record for one rejected message; `error` must be `located`."""
    headers: Headers = [
        ("pulse.reason", error.reason.encode()),
        ("pulse.detail", error.detail[:1024].encode()),
        ("pulse.topic", str(error.topic).encode()),
        ("pulse.partition", str(error.partition).encode()),
        ("pulse.offset", str(error.offset).encode()),
        ("pulse.rejected_at", f"{now:.3f}".encode()),
    ]
    return DeadLetter(key, value, headers)


class DeadLetterPolicy:
    """Counts rejections in the worker's state and enforces the bad-event ratio limit."""

    def __init__(self, state: WorkerState, guard: BadEventGuard) -> None:
        self._state = state
        self._guard = guard

    def record_batch(self, total: int, errors: list[InvalidEvent]) -> None:
        """Count one batch's rejections; raises `BadEventRatioExceeded` past the limit."""
        bad = 0
        for error in errors:
            self._state.rejected[error.reason] += 1
            bad += error.reason in BAD_INPUT_REASONS
        self._guard.observe(total, bad)
