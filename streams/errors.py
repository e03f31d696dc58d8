"""The one exception root of kpi-pulse, with a recoverable and a fatal branch.

Recoverable errors concern one message: the dead-letter path handles them in one place
(`streams.kafka.deadletter`). Fatal errors stop the worker loudly with a message that says what
to fix.
Anything else is a bug and is never swallowed.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

RejectReason: TypeAlias = Literal[
    "undecodable",
    "oversized",
    "schema_violation",
    "unknown_type",
    "non_finite_number",
    "timestamp_out_of_range",
    "unknown_currency",
    "duplicate",
    "late",
    "internal_error",
    "unkeyed",
]
"""Machine-readable reasons for dead-lettering a message (the `reason` label and header)."""

REJECT_REASONS: tuple[RejectReason, ...] = RejectReason.__args__  # type: ignore[attr-defined]

BAD_INPUT_REASONS: frozenset[RejectReason] = frozenset(REJECT_REASONS) - {
    "duplicate",
    "late",
    "internal_error",
}
"""Reasons that point at a broken publisher, and so count toward the bad-event ratio limit.

Duplicates and late events are normal in an at-least-once world and do not; an internal error
is kpi-pulse's own bug (logged as an ERROR), which stopping the fleet would not mend.
"""


class PulseError(Exception):
    """Root of every error kpi-pulse raises on purpose."""


class ContractViolation(PulseError, ValueError):
    """A pure-core function or object given what its contract excludes (a non-finite value, a
    time that does not increase, thresholds out of order): a bug of its caller. A `ValueError`
    too, so that code validating input with `except ValueError` keeps working."""


class BadInstant(PulseError, ValueError):
    """A time a person wrote (command line, incident file, CSV row) that cannot be read; the
    message says why. A `ValueError` too, as the callers report it with the line or option."""


class RecoverableError(PulseError):
    """Concerns one message or one request; the worker carries on."""


class InvalidEvent(RecoverableError):
    """A message that cannot be counted, with the reason and where it came from.

    `topic`, `partition` and `offset` are filled in by the shell (`located`) since the pure core
    never sees Kafka coordinates.
    """

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: RejectReason = reason
        self.detail = detail
        self.topic: str | None = None
        self.partition: int | None = None
        self.offset: int | None = None

    def located(self, topic: str, partition: int, offset: int) -> InvalidEvent:
        self.topic, self.partition, self.offset = topic, partition, offset
        return self


class FatalError(PulseError):
    """The worker must stop; the message tells the operator what to fix."""


class ConfigError(FatalError):
    """A setting is missing or wrong; the message names the environment variable or option."""


class BrokerError(FatalError):
    """The Kafka broker cannot be reached, started or used as configured."""


class ChangelogError(FatalError):
    """A changelog record this version cannot read (written by a newer version, or not a
    changelog record at all): recovery stops rather than rebuild a partition wrongly."""


class RecoveryFailed(FatalError):
    """Rebuilding assigned partitions from their changelog failed: consuming on half-rebuilt
    state would publish wrong KPIs, so the worker stops (names the partitions and the cause)."""


class BadEventRatioExceeded(FatalError):
    """Too many bad events in a row: probably a bad deploy upstream, so stop instead of
    dead-lettering the whole stream."""
