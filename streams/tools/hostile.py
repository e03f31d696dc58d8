"""Hostile input for the worker: messages of many bad kinds, mixed with valid events, each with
the outcome the service owes it.

(Longer than most modules: one small function per hostile kind, 24 of them, read as a list.)

The rule they test: bad input gets a clear answer and loses nothing. Every message is either
counted (`pulse_events_processed_total`) or dead-lettered with a reason; which one is stated per
message (`Expect`):

- `counted`: a valid event, however odd its key, headers or ids;
- `rejected` with a reason: what the contract says today and is not about to change;
- `either`: dead-lettered with some reason, or counted, never lost. For input whose answer the
  stricter contract being written may change (Arabic-Indic digits, "1_000", booleans as integers,
  epoch timestamps, duplicate JSON keys, `budget_set` periods at the edges), and for a resend
  without a key (it may land on another partition than the original; see issue 17, 5).

Valid events come from `streams.simulator` (no bad messages of its own); hostile ones mutate
the newest valid event of the type they need, with a fresh `event_id`, so a hostile event that
is counted is never a duplicate by accident. Hostile messages start after `WARM_UP` valid
events, so every partition has a watermark when the first `late` event comes.

Routing (`partition_for`): by CRC-32 of the key, as a keyed producer does, so a resend with its
original's key lands on its original's partition and is a `duplicate` there; messages without a
key go round robin.

Pure and deterministic: one `random.Random(seed)` (plus the simulator's own seed), no clock.
"""

from __future__ import annotations

import random
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson

from streams.errors import RejectReason
from streams.tools.simulator import SimulationConfig, simulate

__all__ = [
    "COUNTED",
    "DEFAULT_START",
    "EITHER",
    "HOSTILE_KINDS",
    "KIND_HEADER",
    "Expect",
    "HostileConfig",
    "HostileMessage",
    "hostile_messages",
    "partition_for",
]

Headers = tuple[tuple[str, bytes], ...]
Outcome = Literal["counted", "rejected", "either"]

KIND_HEADER = "x-hostile-kind"
"""Every hostile message names its kind in this header (valid ones carry none)."""
WARM_UP = 200
"""Valid events before the first hostile one."""
DEFAULT_START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
"""A Monday morning: the simulator's events of the next hours fall on one UTC day, before its
first FX rate change (6 h in), so every amount converts at the static default rates."""
SIMULATED_RATE = 50.0
ORJSON_MAX_DEPTH = 1024
"""orjson refuses JSON nested deeper than this."""


@dataclass(frozen=True, slots=True)
class Expect:
    outcome: Outcome
    reason: RejectReason | None = None
    """The dead-letter reason, for `rejected` only."""

    def allows(self, reason: RejectReason | None) -> bool:
        """Whether the service's answer (`None`: counted; else the dead letter's reason) is
        one this expectation accepts."""
        if self.outcome == "either":
            return True
        if self.outcome == "counted":
            return reason is None
        return reason == self.reason


COUNTED = Expect("counted")
EITHER = Expect("either")


def rejected(reason: RejectReason) -> Expect:
    return Expect("rejected", reason)


@dataclass(frozen=True, slots=True)
class HostileMessage:
    """One Kafka record to produce; `kind` is "valid" for the simulator's events."""

    kind: str
    key: bytes | None
    value: bytes | None
    headers: Headers
    expect: Expect
    variant: str = ""
    """Which form of the kind (e.g. "tombstone"), for reports."""


@dataclass(frozen=True)
class HostileConfig:
    """`messages` in all, a share `hostile_ratio` of them hostile (kinds in turn, so each gets
    its share), the rest valid. `max_event_bytes` is the worker's `PULSE_MAX_EVENT_BYTES`.

    Raises ValueError when a value is out of range."""

    messages: int
    seed: int = 17
    hostile_ratio: float = 0.35
    max_event_bytes: int = 65_536
    start: datetime = DEFAULT_START

    def __post_init__(self) -> None:
        if self.messages < 0:
            raise ValueError(f"messages must be >= 0, got {self.messages}")
        if not 0 <= self.hostile_ratio < 1:
            raise ValueError(f"hostile_ratio must be within [0, 1), got {self.hostile_ratio}")
        if self.max_event_bytes < 1024:
            raise ValueError(f"max_event_bytes must be >= 1024, got {self.max_event_bytes}")


class _Context:
    """What the kinds draw on: the random source, the size limit, recent valid events."""

    def __init__(self, rng: random.Random, max_event_bytes: int) -> None:
        self.rng = rng
        self.max_event_bytes = max_event_bytes
        self.newest: dict[str, dict[str, Any]] = {}
        self.recent: list[_Recent] = []

    def seen(self, message: HostileMessage, occurred_at: str) -> None:
        event = orjson.loads(message.value or b"{}")
        self.newest[event["type"]] = event
        self.recent.append(_Recent(message.key, message.value, occurred_at))
        del self.recent[:-256]

    def event(self, event_type: str = "order_placed") -> dict[str, Any]:
        """A copy of the newest valid event of `event_type`, with a fresh event_id, at the time
        of the newest valid event of any type (a month's budget was set hours ago: as it was, a
        copy would only be late)."""
        event: dict[str, Any] = orjson.loads(orjson.dumps(self.newest[event_type]))  # a deep copy
        event["event_id"] = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        event["occurred_at"] = self.recent[-1].occurred_at
        return event

    def key(self) -> bytes:
        return f"hostile-{self.rng.getrandbits(64):016x}".encode()

    def choice(self, options: list[tuple[str, Any]]) -> tuple[str, Any]:
        return options[self.rng.randrange(len(options))]


@dataclass(frozen=True, slots=True)
class _Recent:
    """A valid message sent: what a resend repeats, and its event time."""

    key: bytes | None
    value: bytes | None
    occurred_at: str


_Made = tuple[str, bytes | None, bytes | None, Expect]  # variant, key, value, expect
_Kind = Callable[[_Context], _Made]


def _json(event: Any) -> bytes:
    return orjson.dumps(event)


def empty_value(c: _Context) -> _Made:
    if c.rng.random() < 0.5:
        return "empty", c.key(), b"", rejected("undecodable")
    return "tombstone", c.key(), None, rejected("undecodable")


def non_json(c: _Context) -> _Made:
    garbage = b"\x00" + c.rng.randbytes(c.rng.randrange(1, 64))  # NUL first: never JSON
    return "random_bytes", c.key(), garbage, rejected("undecodable")


def invalid_utf8(c: _Context) -> _Made:
    event = c.event()
    raw = _json(event).replace(b'"source":"', b'"source":"\xff\xfe', 1)
    return "in_string", c.key(), raw, rejected("undecodable")


def json_not_object(c: _Context) -> _Made:
    variant, raw = c.choice(
        [
            ("array", _json([c.event()])),
            ("string", b'"order_placed"'),
            ("number", b"42"),
            ("null", b"null"),
            ("true", b"true"),
        ]
    )
    return variant, c.key(), raw, rejected("schema_violation")


def deep_nesting(c: _Context) -> _Made:
    """An array nested just within orjson's limit (then not an object), or just past it."""
    within = c.rng.random() < 0.5
    depth = ORJSON_MAX_DEPTH - 1 if within else ORJSON_MAX_DEPTH + 1
    raw = b"[" * depth + b"]" * depth
    if len(raw) > c.max_event_bytes:
        return "over_size", c.key(), raw, rejected("oversized")
    if within:
        return "within_depth", c.key(), raw, rejected("schema_violation")
    return "past_depth", c.key(), raw, rejected("undecodable")


def near_size_limit(c: _Context) -> _Made:
    """An event padded to exactly the limit (in, then refused for its unknown field), one byte
    over it, or twice it."""
    variant, target = c.choice(
        [
            ("at_limit", c.max_event_bytes),
            ("over_by_one", c.max_event_bytes + 1),
            ("twice", 2 * c.max_event_bytes),
        ]
    )
    event = c.event()
    event["padding"] = ""
    event["padding"] = "x" * (target - len(_json(event)))
    raw = _json(event)
    assert len(raw) == target
    expect = rejected("schema_violation" if target <= c.max_event_bytes else "oversized")
    return variant, c.key(), raw, expect


def unknown_type(c: _Context) -> _Made:
    event = c.event()
    variant, event["type"] = c.choice(
        [
            ("made_up", "order_teleported"),
            ("upper", "ORDER_PLACED"),
            ("blank", ""),
            ("padded", "order_placed "),
            ("number", 7),
            ("missing", None),
        ]
    )
    if event["type"] is None:
        del event["type"]
    return variant, c.key(), _json(event), rejected("unknown_type")


def missing_field(c: _Context) -> _Made:
    event = c.event()
    field, _ = c.choice(
        [
            (f, None)
            for f in (
                "event_id",
                "occurred_at",
                "source",
                "schema_version",
                "dimensions",
                "amount",
                "currency",
                "order_id",
            )
        ]
    )
    del event[field]
    return field, c.key(), _json(event), rejected("schema_violation")


def wrong_type(c: _Context) -> _Made:
    event = c.event()
    field, value = c.choice(
        [
            ("amount", []),
            ("amount", {"value": "1.00"}),
            ("dimensions", "retail"),
            ("event_id", 12345),
            ("occurred_at", {"at": "now"}),
            ("currency", 978),
            ("order_id", None),
            ("schema_version", 2),
        ]
    )
    event[field] = value
    return field, c.key(), _json(event), rejected("schema_violation")


def non_finite(c: _Context) -> _Made:
    event = c.event()
    variant, text = c.choice(
        [
            ("nan_string", "NaN"),
            ("infinity_string", "Infinity"),
            ("minus_infinity", "-Infinity"),
            ("bare_1e400", None),
            ("bare_nan", None),
        ]
    )
    if text is not None:
        event["amount"] = text
        return variant, c.key(), _json(event), rejected("non_finite_number")
    event["amount"] = "@"
    bare = b"1e400" if variant == "bare_1e400" else b"NaN"
    raw = _json(event).replace(b'"amount":"@"', b'"amount":' + bare, 1)
    # orjson names an overflow "infinity" (non-finite) but a bare NaN is no JSON at all.
    return (
        variant,
        c.key(),
        raw,
        rejected("non_finite_number" if bare == b"1e400" else "undecodable"),
    )


def bad_amount(c: _Context) -> _Made:
    event = c.event()
    variant, event["amount"] = c.choice(
        [
            ("negative", "-19.99"),
            ("zero", "0"),
            ("too_many_digits", "1" * 19),
            ("too_many_decimals", "0.0000001"),
            ("absurd_exponent", "1e30"),
            ("text", "lots"),
        ]
    )
    return variant, c.key(), _json(event), rejected("schema_violation")


def unknown_currency(c: _Context) -> _Made:
    event = c.event()
    variant, event["currency"] = c.choice(
        [("unrated", "XXX"), ("unrated_real", "JPY"), ("lower_case", "eur"), ("long", "EURO")]
    )
    reason: RejectReason = (
        "unknown_currency" if variant.startswith("unrated") else "schema_violation"
    )
    return variant, c.key(), _json(event), rejected(reason)


def timestamp_out_of_range(c: _Context) -> _Made:
    event = c.event()
    variant, event["occurred_at"] = c.choice(
        [
            ("far_future", "2999-01-01T00:00:00+00:00"),
            ("next_year", "2099-06-30T12:00:00Z"),
            ("before_2000", "1999-12-31T23:59:59+00:00"),
            ("epoch_zero", "1970-01-01T00:00:00Z"),
        ]
    )
    return variant, c.key(), _json(event), rejected("timestamp_out_of_range")


def timestamp_without_zone(c: _Context) -> _Made:
    event = c.event()
    variant, event["occurred_at"] = c.choice(
        [
            ("naive", event["occurred_at"][:19]),
            ("date_only", event["occurred_at"][:10]),
            ("words", "yesterday"),
        ]
    )
    return variant, c.key(), _json(event), rejected("schema_violation")


def resend(c: _Context) -> _Made:
    """A valid event sent again, key and bytes as before (an at-least-once producer's retry):
    same key, so same partition, so a duplicate there."""
    original = c.recent[c.rng.randrange(len(c.recent))]
    return "same_key", original.key, original.value, rejected("duplicate")


def late(c: _Context) -> _Made:
    """A valid event a day older than the stream: its windows are final."""
    event = c.event()
    at = datetime.fromisoformat(event["occurred_at"]) - timedelta(days=1)
    event["occurred_at"] = at.isoformat(timespec="milliseconds")
    return "a_day_late", c.key(), _json(event), rejected("late")


def null_key(c: _Context) -> _Made:
    if c.rng.random() < 0.5:
        return "valid", None, _json(c.event()), COUNTED
    original = c.recent[c.rng.randrange(len(c.recent))]  # may land on another partition
    return "resend", None, original.value, EITHER


def binary_key(c: _Context) -> _Made:
    variant, key = c.choice(
        [
            ("random", c.rng.randbytes(16)),
            ("nul_bytes", b"\x00" * 8),
            ("empty", b""),
            ("long", c.rng.randbytes(4096)),
            ("invalid_utf8", b"\xff\xfe\xfd"),
        ]
    )
    return variant, key, _json(c.event()), COUNTED


def weird_headers(c: _Context) -> _Made:
    """Odd headers (see `_weird_headers`) on a valid event, or on garbage."""
    if c.rng.random() < 0.5:
        return "on_valid", c.key(), _json(c.event()), COUNTED
    return "on_garbage", c.key(), b"\x00not json", rejected("undecodable")


def unicode_dimensions(c: _Context) -> _Made:
    event = c.event()
    variant, value = c.choice(
        [
            ("rtl_mark", "retail\u200f"),
            ("zero_width", "re\u200btail"),
            ("bidi_override", "\u202eliater"),
            ("homoglyph", "r\u0435tail"),
            ("too_long", "r" * 65),
            ("trailing_newline", "retail\n"),
            ("emoji", "retail\U0001f600"),
            ("empty", ""),
        ]
    )
    event["dimensions"] = {**event["dimensions"], "business_unit": value}
    return variant, c.key(), _json(event), rejected("schema_violation")


def unicode_ids(c: _Context) -> _Made:
    """Identifiers are free text up to 128 characters: odd ones are still counted."""
    event = c.event()
    variant, (field, value) = c.choice(
        [
            ("zero_width_id", ("event_id", f"{event['event_id']}\u200b")),
            ("rtl_source", ("source", "oms-\u202eue")),
            ("emoji_order", ("order_id", f"ord-\U0001f4e6-{event['event_id']}")),
        ]
    )
    event[field] = value
    return variant, c.key(), _json(event), COUNTED


def max_length_ids(c: _Context) -> _Made:
    event = c.event()
    stem = event["event_id"]
    if c.rng.random() < 0.5:
        event["event_id"] = (stem + "x" * 128)[:128]
        event["order_id"] = ("ord-" + stem + "y" * 128)[:128]
        return "at_128", c.key(), _json(event), COUNTED
    event["event_id"] = (stem + "x" * 129)[:129]
    return "at_129", c.key(), _json(event), rejected("schema_violation")


def budget_period_edges(c: _Context) -> _Made:
    event = c.event("budget_set")
    variant, event["period"] = c.choice(
        [("year_0000", "0000-01"), ("year_9999", "9999-12"), ("year_0001", "0001-01")]
    )
    return variant, c.key(), _json(event), EITHER


def contract_pending(c: _Context) -> _Made:
    """Input the stricter contract being written may refuse: answered, never lost."""
    event = c.event()
    variant = c.choice([(v, None) for v in _PENDING])[0]
    if variant == "arabic_indic_digits":
        event["amount"] = "١٢٣.٤٥"
    elif variant == "underscore_digits":
        event["amount"] = "1_000"
    elif variant == "epoch_number":
        event["occurred_at"] = int(datetime.fromisoformat(event["occurred_at"]).timestamp())
    elif variant == "epoch_string":
        event["occurred_at"] = str(int(datetime.fromisoformat(event["occurred_at"]).timestamp()))
    elif variant == "boolean_score":
        event = c.event("feedback_submitted")
        event.pop("nps_score", None)
        event["csat_score"] = True
    else:  # duplicate_keys: the amount twice, the last one unlike the first
        event["amount"] = "@"
        raw = _json(event).replace(b'"amount":"@"', b'"amount":"1.00","amount":"2.00"', 1)
        return variant, c.key(), raw, EITHER
    return variant, c.key(), _json(event), EITHER


_PENDING = (
    "arabic_indic_digits",
    "underscore_digits",
    "epoch_number",
    "epoch_string",
    "boolean_score",
    "duplicate_keys",
)

HOSTILE_KINDS: dict[str, _Kind] = {
    kind.__name__: kind
    for kind in (
        empty_value,
        non_json,
        invalid_utf8,
        json_not_object,
        deep_nesting,
        near_size_limit,
        unknown_type,
        missing_field,
        wrong_type,
        non_finite,
        bad_amount,
        unknown_currency,
        timestamp_out_of_range,
        timestamp_without_zone,
        resend,
        late,
        null_key,
        binary_key,
        weird_headers,
        unicode_dimensions,
        unicode_ids,
        max_length_ids,
        budget_period_edges,
        contract_pending,
    )
}
"""Each kind: a function of the context giving (variant, key, value, expected outcome)."""


def _weird_headers(rng: random.Random, kind: str) -> Headers:
    """Headers a publisher should not send but may: empty names and values, binary values,
    repeated names, non-ASCII names, a long value."""
    return (
        (KIND_HEADER, kind.encode()),
        ("", b""),
        ("trace", rng.randbytes(8)),
        ("trace", b"\xff\xfe\x00"),
        ("ключ-\u200f", "значение".encode()),
        ("long", b"h" * 2048),
    )


def hostile_messages(config: HostileConfig) -> Iterator[HostileMessage]:
    """`config.messages` messages in publish order: valid events and, after `WARM_UP` valid
    ones, a hostile one with probability `hostile_ratio` (kinds in a fixed rotation)."""
    rng = random.Random(f"hostile-{config.seed}")  # not the simulator's sequence: fresh ids
    context = _Context(rng, config.max_event_bytes)
    valid = simulate(
        SimulationConfig(
            start=config.start,
            seed=config.seed,
            rate=SIMULATED_RATE,
            duration=5 * 3600.0,  # never exhausted below ~1M messages; under 6 h, see above
            bad_ratio=0.0,
            max_event_bytes=config.max_event_bytes,
        )
    )
    kinds = list(HOSTILE_KINDS.items())
    turn = 0
    for index in range(config.messages):
        if index >= WARM_UP and rng.random() < config.hostile_ratio:
            name, make = kinds[turn % len(kinds)]
            turn += 1
            variant, key, value, expect = make(context)
            headers = (
                _weird_headers(rng, name)
                if name == "weird_headers"
                else ((KIND_HEADER, name.encode()),)
            )
            yield HostileMessage(name, key, value, headers, expect, variant)
            continue
        simulated = next(valid)
        message = HostileMessage("valid", simulated.key, simulated.value, (), COUNTED)
        context.seen(message, orjson.loads(simulated.value)["occurred_at"])
        yield message


def partition_for(key: bytes | None, partitions: int, index: int) -> int:
    """The partition of a message: by CRC-32 of its key, round robin (by `index`) without one."""
    if key is None:
        return index % partitions
    return zlib.crc32(key) % partitions
