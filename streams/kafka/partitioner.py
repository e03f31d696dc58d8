"""Is every keyed record on the partition murmur2 gives its key? A warning when it is not.

Dedupe and the order join are per partition: they are exact only when a resend, or an order's
delivery, lands where the first record with that key did. Java clients, kafka-python and aiokafka
pick the partition with murmur2; librdkafka (confluent-kafka, kcat) by default with CRC32
(`consistent_random`), which puts most keys elsewhere. A topic written by both is silently split.
The worker cannot move records, but it can see the symptom: it samples keyed records, and warns
once per topic when more than a tenth of those sampled sit on another partition than murmur2's
(README, "Keys"). Records placed on explicit partitions on purpose look the same, hence a warning,
not a rejection.

Sampling keeps it cheap: one keyed record in `SAMPLE_EVERY` is checked (measured: ~70 ns a
record, <1% of what the rest of an event costs).

`murmur2` is the Java client's hash read four bytes at a time (`struct`), about twice as fast as
aiokafka's byte-by-byte pure-Python one (~7.5 µs a 60-byte key); `Murmur2Partitioner` is aiokafka's
default partitioner with it, which every producer of ours uses (`clients.new_producer`): KPI,
anomaly and dead-letter records land where the Java default partitioner puts their key, as before.
"""

from __future__ import annotations

import logging
import random
import struct
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Protocol

log = logging.getLogger(__name__)

_M = 0x5BD1E995
_SEED = 0x9747B28C
_MASK = 0xFFFFFFFF

SAMPLE_EVERY = 128
MIN_SAMPLES = 20
WARN_SHARE = 0.1


class Keyed(Protocol):
    @property
    def key(self) -> bytes | None: ...


def murmur2(data: bytes) -> int:
    """The Java client's `Utils.murmur2` of `data`, as an unsigned 32-bit int (as aiokafka's).
    Masks are applied only where a shift needs them (`&` distributes over `^`)."""
    length = len(data)
    h = _SEED ^ length
    for word in struct.unpack_from(f"<{length >> 2}I", data):
        k = (word * _M) & _MASK
        h = (h * _M ^ (k ^ (k >> 24)) * _M) & _MASK
    extra = length & 3
    if extra:
        whole = length & ~3
        if extra == 3:
            h ^= data[whole + 2] << 16
        if extra >= 2:
            h ^= data[whole + 1] << 8
        h = ((h ^ data[whole]) * _M) & _MASK
    h = ((h ^ (h >> 13)) * _M) & _MASK
    return h ^ (h >> 15)


def murmur2_partition(key: bytes, partitions: int) -> int:
    """The partition the Java client's default partitioner gives `key` among `partitions`."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


HASH_CACHE = 8192
"""Keys whose hash a producer remembers (then it starts again): a window's KPI record is sent
provisional, then final, with one key."""


class Murmur2Partitioner:
    """aiokafka's `DefaultPartitioner` with the faster `murmur2` (the same partitions): a keyed
    record goes to `all_partitions[murmur2(key) % n]`, an unkeyed one to a random available
    partition. The hashes of the last `HASH_CACHE` keys are remembered."""

    def __init__(self) -> None:
        self._hashes: dict[bytes, int] = {}

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return random.choice(available or all_partitions)
        hashes = self._hashes
        hashed = hashes.get(key)
        if hashed is None:
            if len(hashes) >= HASH_CACHE:
                hashes.clear()
            hashed = hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[hashed % len(all_partitions)]


class PartitionerCheck:
    """Samples keyed records of the input topics; `misplaced` and `sampled` count per topic."""

    def __init__(self, partitions: Mapping[str, int], sample_every: int = SAMPLE_EVERY) -> None:
        self.partitions = dict(partitions)
        self.sample_every = sample_every
        self.sampled: Counter[str] = Counter()
        self.misplaced: Counter[str] = Counter()
        self.warned: set[str] = set()
        self._seen = 0

    def observe(self, topic: str, partition: int, records: Sequence[Keyed]) -> None:
        """Look at the keys of one batch of `topic`/`partition` (a sample of them)."""
        count = self.partitions.get(topic, 0)
        if count < 2:
            return
        start = -self._seen % self.sample_every
        self._seen += len(records)
        for record in records[start :: self.sample_every]:
            key = record.key
            if key is None:
                continue
            self.sampled[topic] += 1
            if murmur2_partition(key, count) != partition:
                self.misplaced[topic] += 1
        self._judge(topic)

    def _judge(self, topic: str) -> None:
        sampled, misplaced = self.sampled[topic], self.misplaced[topic]
        if topic in self.warned or sampled < MIN_SAMPLES or misplaced <= WARN_SHARE * sampled:
            return
        self.warned.add(topic)
        log.warning(
            "topic %s: %d of %d sampled keyed records are not on the partition murmur2 gives "
            "their key: a producer uses another partitioner (librdkafka's default?), so dedupe "
            "and the order join miss records with one key on two partitions; publish with "
            "murmur2 (librdkafka: partitioner=murmur2_random; README, 'Keys')",
            topic,
            misplaced,
            sampled,
        )
