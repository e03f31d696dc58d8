"""Bytes in, a validated event out, or an `InvalidEvent` saying exactly why not.

Two ways in, one contract: most valid events take the short way (`streams.core.fast_decode`,
msgspec), which takes only what the contract takes, with the same values; everything else,
and every rejection with its reason, takes the contract's way (orjson, then the pydantic
models of `schemas`). The event is the short way's struct or the contract's model, with the
same fields: the core reads events by attribute.

Pure: the caller passes the wall-clock time used for the future-skew check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from pydantic import ValidationError

from schemas import EVENT_TYPES, Envelope, event_adapter
from schemas.strict import DECIMAL_ERROR
from streams.core.fast_decode import fast_decode
from streams.errors import InvalidEvent

EARLIEST_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC).timestamp()
"""Events claiming to be older than this are treated as a broken clock, not as history."""
_validate = event_adapter.validator.validate_python
"""`event_adapter.validate_python` without its Python wrapper, which passes eight keyword
arguments per call (~1.5 µs of ~7 per event, measured): the same pydantic-core validator of the
same schema, called with its defaults, so it accepts, rejects and reports exactly the same."""


@dataclass(frozen=True, slots=True)
class ValidationLimits:
    """Bounds applied before and after schema validation."""

    max_event_bytes: int = 65536
    max_future_skew_seconds: float = 300.0


def decode_event(raw: bytes | None, limits: ValidationLimits, now: float) -> Envelope:
    """Decode and validate one message value (see `decode_timed`)."""
    return decode_timed(raw, limits, now)[0]


def decode_timed(raw: bytes | None, limits: ValidationLimits, now: float) -> tuple[Envelope, float]:
    """Decode and validate one message value; the event and its `occurred_at` as epoch seconds
    (computed once here, the hot path passes it on to `PartitionState.apply`).

    `now` is wall-clock epoch seconds; an `occurred_at` later than `now + max_future_skew_seconds`
    or before 2000-01-01 is rejected as `timestamp_out_of_range`; a key repeated in one JSON
    object, which orjson would resolve silently (the last wins), as `schema_violation`. Raises
    `InvalidEvent`.
    """
    if raw is None or not raw:
        raise InvalidEvent("undecodable", "empty message value")
    if len(raw) > limits.max_event_bytes:
        raise InvalidEvent(
            "oversized", f"{len(raw)} bytes exceeds the limit of {limits.max_event_bytes}"
        )
    event = fast_decode(raw)  # most valid events; the contract takes them too, equal
    if event is None:
        event = _contract_decode(raw)
    occurred = event.occurred_at.timestamp()
    if occurred < EARLIEST_EVENT_TIME or occurred > now + limits.max_future_skew_seconds:
        raise InvalidEvent(
            "timestamp_out_of_range", f"occurred_at {event.occurred_at.isoformat()} is implausible"
        )
    return event, occurred


def _contract_decode(raw: bytes) -> Envelope:
    """orjson, then the contract's pydantic validator: every rejection's reason comes from
    here."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # orjson refuses 1e999 as "number is infinity"; that is a non-finite number, not noise.
        if "infinity" in str(exc):
            raise InvalidEvent("non_finite_number", f"not finite JSON: {exc}") from None
        raise InvalidEvent("undecodable", f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidEvent("schema_violation", f"expected a JSON object, got {type(data).__name__}")
    event_type = data.get("type")
    if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
        raise InvalidEvent("unknown_type", f"unknown event type {event_type!r}")
    try:
        event: Envelope = _validate(data)
    except ValidationError as exc:
        raise _from_validation_error(exc) from None
    # Repeated keys (orjson keeps the last silently): cheap tests, then `_repeated_key`.
    encoded = orjson.dumps(data)
    if encoded != raw:  # equal (compact JSON, as orjson, JSON.stringify or Go write it): none
        colons = raw.count(b":")
        if b"\\" in raw:  # one-byte search: several times faster than one for b"\\u"
            colons += raw.count(b"\\u003a") + raw.count(b"\\u003A")
        if colons != encoded.count(b":"):
            repeated = _repeated_key(raw)
            if repeated is not None:
                raise InvalidEvent("schema_violation", f"key {repeated!r} appears more than once")
    return event


def _repeated_key(raw: bytes) -> str | None:
    """The first key found twice in one JSON object of `raw`, or None (slow: a second parse).

    `decode_event` calls it only when cheap tests fail. A `raw` that is exactly what orjson
    writes for the decoded event has no repeated key (~0.2 µs, 3% of `decode_event`). Else
    (~0.7 µs, 10%): every key is followed by one `:` outside strings, and a colon inside a
    string is a literal `:` or the escape `\\u003a`; so without repeated keys `raw` holds
    exactly as many of those as orjson's encoding of the decoded event (which writes `:`
    literally), while a repeated key adds at least its own colon and removes none. The counts
    also differ, harmlessly, when `raw` has an escaped backslash before "u003a": then this
    finds nothing.
    """
    repeated: list[str] = []

    def check(pairs: list[tuple[str, object]]) -> None:
        keys = [key for key, _ in pairs]
        if len(set(keys)) < len(keys) and not repeated:
            repeated.append(next(key for i, key in enumerate(keys) if key in keys[:i]))

    json.loads(raw, object_pairs_hook=check)
    return repeated[0] if repeated else None


def _from_validation_error(exc: ValidationError) -> InvalidEvent:
    errors = exc.errors(include_url=False)
    if any(
        error["type"] == "finite_number"
        or (error["type"] == DECIMAL_ERROR and _spells_non_finite(error["input"]))
        for error in errors
    ):
        return InvalidEvent("non_finite_number", "a number is NaN or infinite")
    detail = "; ".join(
        f"{'.'.join(str(p) for p in error['loc'][1:]) or '(root)'}: {error['msg']}"
        for error in errors[:5]
    )
    return InvalidEvent("schema_violation", detail)


def _spells_non_finite(value: object) -> bool:
    """ "NaN", "-Infinity"...: what Python's `Decimal` reads as non-finite (JSON itself has no
    such number; orjson refuses the bare words)."""
    return isinstance(value, str) and value.strip().lstrip("+-").lower() in _NON_FINITE


_NON_FINITE = frozenset({"nan", "snan", "inf", "infinity"})
