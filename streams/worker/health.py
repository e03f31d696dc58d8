"""Whether a worker is alive and ready, as `/healthz` and `/readyz` answer it."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from streams.core import WorkerState
from streams.detection.completeness import judging_clock
from streams.errors import FatalError, RecoveryFailed

log = logging.getLogger("streams.worker")

QUIET_BEFORE_WALL_CLOCK_S = 10.0
"""Seconds without a record, caught up, before sources are judged by wall-clock time."""
EMPTY_HOLD_S = 2.0
"""Seconds a partition without data still holds the watermark back, read to its end, after
another partition got its first data: a bulk load into empty topics reaches the partitions
milliseconds apart, and the first one's events must not close the others' windows."""


@dataclass
class Health:
    """What the consume loop reports as it goes, and what the probes make of it.

    Alive while the loop runs and keeps coming round (a stuck or dead loop fails after
    `liveness_timeout` seconds; recovering partitions counts as alive however long it takes),
    and never after a fatal failure. Ready when alive, partitions are assigned, their state is
    recovered and the worker is caught up (at most `batch_max_records` behind in all).
    """

    liveness_timeout: float
    batch_max_records: int
    running: bool = False
    recovering: bool = False
    beat: float = field(default_factory=time.monotonic)
    """When the consume loop last came round."""
    lag: dict[TopicPartition, int] = field(default_factory=dict)
    """Messages behind per owned partition (from the broker's high-water mark)."""
    last_records: float = field(default_factory=time.monotonic)
    """When the consume loop last got records (see `QUIET_BEFORE_WALL_CLOCK_S`)."""
    first_data: float = -math.inf
    """When a partition last got its first data (`hold_empty`, `EMPTY_HOLD_S`)."""
    _empty: set[TopicPartition] = field(default_factory=set)
    """Owned partitions last seen without data."""
    fatal: FatalError | None = None
    """A failure in the rebalance listener (which aiokafka would only log): the loop raises it
    before reading anything more."""

    def liveness(self) -> tuple[bool, dict[str, object]]:
        quiet = time.monotonic() - self.beat
        ok = self.running and (self.recovering or quiet < self.liveness_timeout)
        ok = ok and self.fatal is None
        details: dict[str, object] = {"running": self.running}
        details["loop_quiet_seconds"] = round(quiet, 3)
        if self.fatal is not None:
            details["fatal"] = str(self.fatal)
        return ok, details

    def readiness(
        self, owned: int, assigned: bool, guarantee: str | None
    ) -> tuple[bool, dict[str, object]]:
        alive, _ = self.liveness()
        recovered = assigned and not self.recovering
        behind = sum(self.lag.values())
        caught_up = owned > 0 and len(self.lag) >= owned and behind <= self.batch_max_records
        checks = {"alive": alive, "assigned": owned > 0, "recovered": recovered}
        checks["caught_up"] = caught_up
        details: dict[str, object] = {**checks, "partitions": owned, "lag_messages": behind}
        details["guarantee"] = guarantee
        return all(checks.values()), details

    async def refresh_lag(self, consumer: AIOKafkaConsumer, state: WorkerState) -> None:
        """Lag of every owned partition from the broker's high-water mark (fetch responses carry
        it even when they carry no records), so a quiet partition reads 0, not unknown; a
        partition read to its end no longer holds back the watermark for want of data (unless
        another partition got its first data in the last `EMPTY_HOLD_S`). Before
        its first checkpoint a partition's progress is the consumer's position (a partition
        whose records all expired starts at its end, not at 0)."""
        lag = self.lag
        now = time.monotonic()
        self.hold_empty(state, now)
        released = self.released(now)
        for (topic, partition), part in list(state.partitions.items()):
            tp = TopicPartition(topic, partition)
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            read_to = part.next_offset
            if read_to is None:
                try:
                    read_to = await consumer.position(tp)
                except (KafkaError, AssertionError):  # revoked meanwhile
                    continue
            lag[tp] = max(0, highwater - read_to)
            if not lag[tp] and released:
                part.unread = False

    def released(self, now: float) -> bool:
        """Whether a partition without data read to its end stops holding the watermark back
        at `now` (monotonic seconds)."""
        return now - self.first_data >= EMPTY_HOLD_S

    def hold_empty(self, state: WorkerState, now: float) -> None:
        """When a partition got its first data, every partition still without data holds the
        watermark back again for `EMPTY_HOLD_S` (their own first events may be on the way:
        measured, a bulk load of twenty minutes into six partitions lost a partition's events
        to windows the first one closed, 3 runs in 6 at a 25 ms fetch wait)."""
        empty: set[TopicPartition] = set()
        began = False
        for (topic, partition), part in state.partitions.items():
            tp = TopicPartition(topic, partition)
            if not part.has_data:
                empty.add(tp)
            elif tp in self._empty:
                began = True
        self._empty = empty
        if began:
            self.first_data = now
            for part in state.partitions.values():
                if not part.has_data:
                    part.unread = True

    def clock(self, watermark: float, now: float, delay: float) -> float:
        """Event time for completeness: the watermark, or wall-clock time once caught up and
        quiet (so that a source silent in real time is stale even when nothing else moves)."""
        lag = self.lag
        return judging_clock(
            watermark,
            now,
            caught_up=bool(lag) and not any(lag.values()),
            quiet_for=time.monotonic() - self.last_records,
            quiet=QUIET_BEFORE_WALL_CLOCK_S,
            delay=delay,
        )

    def fail(self, doing: str, partitions: Iterable[TopicPartition], exc: Exception) -> None:
        """Keep a rebalance-listener failure as fatal: the probes fail at once and the loop
        raises it (`RecoveryFailed`, naming the partitions and the cause) before reading on."""
        names = ", ".join(sorted(f"{tp.topic}[{tp.partition}]" for tp in partitions))
        log.error("%s %s failed: %r", doing, names, exc, exc_info=exc)
        if self.fatal is None:
            self.fatal = RecoveryFailed(
                f"{doing} partitions {names} failed: {exc!r}; stopping rather than consuming "
                "on partly rebuilt state (a restart recovers them again)"
            )
            self.fatal.__cause__ = exc
