"""The bad-event ratio limit and the dead-letter path built on it."""

from __future__ import annotations

from collections import Counter

import pytest

from streams.core import BadEventGuard
from streams.errors import (
    BAD_INPUT_REASONS,
    BadEventRatioExceeded,
    FatalError,
    InvalidEvent,
    RejectReason,
)
from streams.kafka.deadletter import DeadLetter, DeadLetterPolicy, dead_letter


def errors(reason: RejectReason, count: int) -> list[InvalidEvent]:
    return [InvalidEvent(reason, "test") for _ in range(count)]


def test_does_not_trip_before_a_full_window_was_seen():
    guard = BadEventGuard(max_ratio=0.5, window=10)

    guard.observe(9, 9)  # 100 % bad, but only 9 < 10 events seen

    with pytest.raises(BadEventRatioExceeded, match="PULSE_MAX_BAD_RATIO"):
        guard.observe(1, 0)  # 10 seen, 9 bad > 0.5 * 10 = 5


def test_trips_only_above_the_ratio():
    guard = BadEventGuard(max_ratio=0.5, window=10)

    guard.observe(10, 5)  # 5 bad is not > 0.5 * 10 = 5

    # The (10, 5) batch slides out once 10 newer events are held: 6 of the last 10 > 5.
    with pytest.raises(BadEventRatioExceeded):
        guard.observe(10, 6)


def test_empty_batches_are_ignored():
    guard = BadEventGuard(max_ratio=0.5, window=10)
    guard.observe(9, 9)
    guard.observe(0, 0)  # would be 9 of 9 again; nothing new

    with pytest.raises(BadEventRatioExceeded):
        guard.observe(1, 1)  # 10 of 10


def test_old_good_batches_slide_out_so_history_does_not_mask_a_bad_deploy():
    guard = BadEventGuard(max_ratio=0.5, window=10)
    guard.observe(100, 0)

    # Cumulatively 10 of 110 (9 %) would pass. But 110 - 100 >= 10, so (100, 0) slides out
    # and the window holds (10, 10): 10 of 10 bad.
    with pytest.raises(BadEventRatioExceeded):
        guard.observe(10, 10)


def test_old_bad_batches_slide_out():
    guard = BadEventGuard(max_ratio=0.5, window=10)
    guard.observe(9, 9)

    # 19 - 9 >= 10, so (9, 9) slides out: 1 of the last 10 bad. Cumulatively 10 of 19 would trip.
    guard.observe(10, 1)
    guard.observe(10, 5)  # (10, 1) slides out in turn: 5 of 10, not > 5


def test_only_broken_publisher_reasons_count_toward_the_ratio():
    assert set(BAD_INPUT_REASONS) == {
        "undecodable",
        "oversized",
        "schema_violation",
        "unknown_type",
        "non_finite_number",
        "timestamp_out_of_range",
        "unknown_currency",
        "unkeyed",
    }


def test_policy_counts_every_rejection_but_only_bad_input_toward_the_limit(make_state):
    state = make_state()
    policy = DeadLetterPolicy(state.rejected, BadEventGuard(max_ratio=0.5, window=10))

    # 10 of 10 rejected, but duplicates and late events are normal: 0 bad (counted as bad,
    # this batch alone would trip: 10 > 0.5 * 10).
    policy.record_batch(10, errors("duplicate", 6) + errors("late", 4))
    assert state.rejected == Counter({"duplicate": 6, "late": 4})

    # 5 bad of the last 10 (the first batch slid out); not > 5. Had duplicates counted: 9 > 5.
    policy.record_batch(
        10, errors("schema_violation", 3) + errors("undecodable", 2) + errors("duplicate", 4)
    )
    assert state.rejected == Counter(
        {"duplicate": 10, "late": 4, "schema_violation": 3, "undecodable": 2}
    )

    with pytest.raises(BadEventRatioExceeded) as caught:
        policy.record_batch(10, errors("unknown_currency", 6))  # 6 of the last 10 > 5

    assert isinstance(caught.value, FatalError)
    assert "6 of the last 10" in str(caught.value)
    # Counted before the worker stops, so the metric shows what stopped it.
    assert state.rejected["unknown_currency"] == 6


def test_dead_letter_keeps_the_bytes_and_says_why_and_where():
    key = b"order-\x00\xff1"
    value = b'{"type": "order_placed", "amount": \xff}'  # not even UTF-8: kept as is
    error = InvalidEvent("schema_violation", "amount: Input should be a valid decimal").located(
        "pulse.events", 3, 42
    )

    record = dead_letter(error, key, value, now=1_709_294_400.5)

    assert record == DeadLetter(
        key=b"order-\x00\xff1",
        value=b'{"type": "order_placed", "amount": \xff}',
        headers=[
            ("pulse.reason", b"schema_violation"),
            ("pulse.detail", b"amount: Input should be a valid decimal"),
            ("pulse.topic", b"pulse.events"),
            ("pulse.partition", b"3"),
            ("pulse.offset", b"42"),
            ("pulse.rejected_at", b"1709294400.500"),
        ],
    )


def test_dead_letter_of_a_keyless_empty_message():
    error = InvalidEvent("undecodable", "empty message value").located("pulse.events", 0, 0)

    record = dead_letter(error, None, None, now=0.0)

    assert (record.key, record.value) == (None, None)
    assert dict(record.headers)["pulse.reason"] == b"undecodable"
    assert dict(record.headers)["pulse.offset"] == b"0"


def test_dead_letter_keeps_the_original_headers_and_timestamp():
    error = InvalidEvent("late", "window final").located("pulse.events", 1, 7)

    record = dead_letter(
        error,
        b"k",
        b"{}",
        now=10.0,
        headers=[("traceparent", b"00-abc-01"), ("source", b"erp")],
        timestamp_ms=1_709_294_400_123,
    )

    assert record.headers[:2] == [("traceparent", b"00-abc-01"), ("source", b"erp")]
    assert dict(record.headers)["pulse.timestamp"] == b"1709294400123"
    assert dict(record.headers)["pulse.reason"] == b"late"


def test_a_message_too_large_for_its_dead_letter_is_kept_truncated_with_size_and_hash():
    value = bytes(range(256)) * 4096  # 1,048,576 bytes: as large as an input topic may take
    error = InvalidEvent("oversized", "too big").located("pulse.events", 0, 3)

    record = dead_letter(error, b"key", value, now=0.0, headers=[("h", b"v")])

    assert record.value is not None
    headers = dict(record.headers)
    size = len(record.key or b"") + len(record.value)
    size += sum(len(n) + len(v) for n, v in record.headers)
    assert size == 1_000_000  # exactly the budget: the start of the value, then the headers
    assert value.startswith(record.value)
    assert headers["pulse.truncated"] == b"1"
    assert headers["pulse.original_bytes"] == b"1048576"
    # sha256 of 4096 repetitions of bytes 0..255, as `sha256sum` gives it for that file
    assert headers["pulse.original_sha256"] == (
        b"fbbab289f7f94b25736c58be46a994c441fd02552cc6022352e3d86d2fab7c83"
    )
    assert headers["pulse.reason"] == b"oversized"


def test_a_message_that_fits_its_dead_letter_is_kept_whole():
    value = b"x" * 999_000

    record = dead_letter(InvalidEvent("oversized", "big").located("t", 0, 0), None, value, 0.0)

    assert record.value == value
    assert "pulse.truncated" not in dict(record.headers)
