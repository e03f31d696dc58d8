"""The murmur2 check of keyed input records: Kafka's own test vectors, and a warning only when
another partitioner (librdkafka's CRC32 default, computed here with zlib) placed the records."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.kafka.partitioner import (
    HASH_CACHE,
    MIN_SAMPLES,
    Murmur2Partitioner,
    PartitionerCheck,
    murmur2,
    murmur2_partition,
)

PARTITIONS = 6


@dataclass(frozen=True)
class Rec:
    key: bytes | None


# Kafka's UtilsTest.testMurmur2 (Java ints): the partition is (hash & 0x7fffffff) % n.
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("key", "java"), JAVA_MURMUR2.items())
def test_murmur2_partition_is_the_java_clients(key: bytes, java: int) -> None:
    for n in (1, 3, 4, 6, 12):
        assert murmur2_partition(key, n) == (java & 0x7FFFFFFF) % n


@settings(max_examples=500, deadline=None, derandomize=True)
@given(key=st.binary(max_size=200), partitions=st.integers(1, 64))
def test_the_fast_murmur2_and_partitioner_equal_aiokafkas(key: bytes, partitions: int) -> None:
    """Every length (so every tail of 0-3 bytes) and byte value: the same hash as aiokafka's
    byte-by-byte murmur2, so the same partition as its default partitioner (and the Java one)."""
    assert murmur2(key) == aiokafka_murmur2(key)
    every = list(range(partitions))
    assert Murmur2Partitioner()(key, every, every) == DefaultPartitioner()(key, every, every)


def test_remembered_hashes_give_the_same_partitions() -> None:
    """One producer's partitioner sees a key again (a KPI record provisional, then final),
    with another partition count (a topic grown meanwhile), and more keys than it remembers."""
    partitioner = Murmur2Partitioner()
    keys = [f"revenue|1m|{minute}|region=emea".encode() for minute in range(HASH_CACHE + 500)]
    for n in (4, 7):
        every = list(range(n))
        for key in keys + keys[:1000]:
            assert partitioner(key, every, every) == DefaultPartitioner()(key, every, every)


def test_an_unkeyed_record_goes_to_an_available_partition() -> None:
    chosen = {Murmur2Partitioner()(None, [0, 1, 2, 3], [1, 3]) for _ in range(200)}
    assert chosen == {1, 3}
    assert Murmur2Partitioner()(None, [0, 1, 2], []) in {0, 1, 2}


def _librdkafka_default(key: bytes, n: int) -> int:
    return (zlib.crc32(key) & 0xFFFFFFFF) % n  # consistent_random for a keyed record


def _feed(check: PartitionerCheck, place: Callable[[bytes, int], int], keys: list[bytes]) -> None:
    by_partition: dict[int, list[Rec]] = {}
    for key in keys:
        by_partition.setdefault(place(key, PARTITIONS), []).append(Rec(key))
    for partition, records in by_partition.items():
        check.observe("orders", partition, records)


def test_murmur2_placed_records_raise_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    check = PartitionerCheck({"orders": PARTITIONS}, sample_every=1)
    _feed(check, murmur2_partition, [f"order-{i}".encode() for i in range(500)])
    assert check.sampled["orders"] == 500
    assert check.misplaced["orders"] == 0
    assert "murmur2" not in caplog.text


def test_records_placed_by_librdkafkas_default_warn_once(caplog: pytest.LogCaptureFixture) -> None:
    keys = [f"order-{i}".encode() for i in range(500)]
    differ = sum(
        murmur2_partition(k, PARTITIONS) != _librdkafka_default(k, PARTITIONS) for k in keys
    )
    check = PartitionerCheck({"orders": PARTITIONS}, sample_every=1)
    with caplog.at_level(logging.WARNING, logger="streams.kafka.partitioner"):
        _feed(check, _librdkafka_default, keys)
        _feed(check, _librdkafka_default, keys)
    assert check.misplaced["orders"] == 2 * differ
    assert differ > 0.7 * len(keys)  # about 5 in 6 with 6 partitions
    warnings = [r for r in caplog.records if "another partitioner" in r.getMessage()]
    assert len(warnings) == 1
    assert "topic orders" in warnings[0].getMessage()


def test_sampling_looks_at_one_record_in_n_across_batches() -> None:
    check = PartitionerCheck({"orders": PARTITIONS}, sample_every=10)
    keys = [f"k{i}".encode() for i in range(95)]
    for start in range(0, 95, 7):  # batches of 7, one partition: misplaced or not, all counted
        check.observe("orders", 0, [Rec(k) for k in keys[start : start + 7]])
    assert check.sampled["orders"] == 10  # records 0, 10, ..., 90


def test_unkeyed_records_and_single_partition_topics_are_not_judged() -> None:
    check = PartitionerCheck({"orders": PARTITIONS, "one": 1}, sample_every=1)
    check.observe("orders", 0, [Rec(None)] * (MIN_SAMPLES * 2))
    check.observe("one", 0, [Rec(b"x")] * (MIN_SAMPLES * 2))
    check.observe("unknown", 3, [Rec(b"x")] * (MIN_SAMPLES * 2))
    assert sum(check.sampled.values()) == 0
