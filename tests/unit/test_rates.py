"""Records of the `<prefix>.rates` global table (streams/kafka/rates.py)."""

from __future__ import annotations

import pytest

from streams.kafka.rates import parse_rate, rate_record

T0 = 1_709_294_400  # 2024-03-01T12:00:00Z


def test_a_rate_record_is_keyed_by_currency_and_effective_time_and_reads_back():
    key, value = rate_record(("USD", T0 + 0.5, "0.915"))

    assert key == b"USD|2024-03-01T12:00:00.500000+00:00"
    assert parse_rate(value) == ("USD", T0 + 0.5, "0.915")


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b"not json",
        b"[]",
        b'{"currency": "USD", "effective_from": 1}',
        b'{"currency": "usd", "effective_from": 1, "rate": "0.9"}',
        b'{"currency": "USD", "effective_from": 1, "rate": "0"}',
        b'{"currency": "USD", "effective_from": 1, "rate": "NaN"}',
        b'{"currency": "USD", "effective_from": 1, "rate": "x"}',
        b'{"currency": "USD", "effective_from": "soon", "rate": "0.9"}',
    ],
)
def test_a_record_holding_no_valid_rate_is_none(value):
    assert parse_rate(value) is None
