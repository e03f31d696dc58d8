"""The worker's batch step, without a broker: records in, everything the batch must write out.

`BatchStep.read` decodes, validates and counts each record of a batch into its partition's state
and says what the batch must write: dead letters (each rejected record with why), the changelog
records that move every partition past the batch, and the counts of the batch. `BatchStep.close`
then adds the KPI, partial and anomaly records of the windows the batch closed and expires what
can no longer change. Nothing here talks to Kafka: the worker sends what a step returns (and
property tests call the same step).

No single event stops the worker: an unexpected exception while handling one is a bug of ours,
dead-lettered as `internal_error` and logged with its traceback. A tripped bad-event guard is
returned with the batch (`BatchOutput.tripped`), so the worker stops only once what the batch
read is durable, and a restart moves past it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias, TypeVar

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from streams.core import (
    BadEventGuard,
    KpiValue,
    PartitionState,
    ValidationLimits,
    WorkerState,
    decode_timed,
)
from streams.core.restatements import material
from streams.detection.watch import AnomalyWatch
from streams.errors import BadEventRatioExceeded, InvalidEvent, RejectReason
from streams.kafka.anomalies import anomaly_record, log_anomaly
from streams.kafka.changelog import ChangelogWriter, Logged
from streams.kafka.deadletter import DeadLetter, DeadLetterPolicy, dead_letter
from streams.kafka.kpi_topic import KpiPublisher
from streams.kafka.rates import rate_record

log = logging.getLogger("streams.worker")

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"
E = TypeVar("E", bound=BaseException)


@dataclass
class Counts:
    """Events processed (by type) and rejected (by reason)."""

    processed: Counter[str] = field(default_factory=Counter)
    rejected: Counter[RejectReason] = field(default_factory=Counter)
    unkeyed: Counter[str] = field(default_factory=Counter)
    """Records without a Kafka key, by topic."""
    restated: Counter[tuple[str, bool]] = field(default_factory=Counter)
    """Restated KPI records published, by (KPI, material)."""

    def add_to(self, state: WorkerState) -> None:
        state.processed.update(self.processed)
        state.rejected.update(self.rejected)
        state.unkeyed.update(self.unkeyed)
        state.restated.update(self.restated)


@dataclass
class BatchOutput:
    """What one batch must write, and what it counted."""

    dead: list[DeadLetter]
    logged: list[Logged]
    counts: Counts
    tripped: BadEventRatioExceeded | None = None
    """The bad-event guard tripped on this batch: stop once it is durable."""
    rate_records: list[tuple[bytes, bytes]] = field(default_factory=list)
    """FX rates counted in this batch, for every worker (`streams.kafka.rates`)."""
    kpi_records: list[tuple[bytes, bytes]] = field(default_factory=list)
    partial_records: list[tuple[bytes, bytes]] = field(default_factory=list)
    """Per-partition parts of the same windows, and progress, for the merge stage."""
    anomaly_records: list[tuple[bytes, bytes]] = field(default_factory=list)


class BatchStep:
    """One worker's batch step over the partitions it owns (`state`)."""

    def __init__(
        self,
        state: WorkerState,
        *,
        limits: ValidationLimits,
        guard: BadEventGuard,
        changelog: ChangelogWriter,
        kpis: KpiPublisher,
        watch: AnomalyWatch | None,
        require_keys: bool = False,
        score_values: bool = True,
    ) -> None:
        self.state = state
        self.limits = limits
        self.changelog = changelog
        self.kpis = kpis
        self.watch = watch
        self.require_keys = require_keys
        self.score_values = score_values
        """False with a merge stage: it scores the company-wide series; the worker judges only
        its sources' freshness (`data_stale`), which only it sees."""
        """`PULSE_KEY_POLICY=require`: a record without a key is dead-lettered as `unkeyed`."""
        self._counts = Counts()
        self.policy = DeadLetterPolicy(self._counts.rejected, guard)
        self.consumed = 0
        """Records read (valid or not)."""
        self.detect_seconds = 0.0
        """Time spent in detection (the detector cost on the service board)."""
        self.detect_values = 0
        """Values of closed window instances fed to the detection (`pulse bench` divides)."""

    def read(self, batches: Mapping[TopicPartition, Sequence[Record]], now: float) -> BatchOutput:
        """Count every record of `batches` (wall-clock `now`, epoch seconds) into its owned
        partition; partitions no longer owned are skipped (revoked while the fetch was in
        flight)."""
        dead: list[DeadLetter] = []
        logged: list[Logged] = []
        tripped: BadEventRatioExceeded | None = None
        for tp, records in batches.items():
            part = self.state.partitions.get((tp.topic, tp.partition))
            if part is None or not records:
                continue
            rejected = self.apply(tp, part, records, now)
            dead += [_dead_letter(error, record, now) for error, record in rejected]
            self.consumed += len(records)
            try:
                self.policy.record_batch(len(records), [error for error, _ in rejected])
            except BadEventRatioExceeded as exc:
                tripped = tripped or exc
            logged += self.changelog.records(tp, part, records[-1].offset + 1)
        pending = self._counts
        counts = Counts(Counter(pending.processed), Counter(pending.rejected), pending.unkeyed)
        pending.processed.clear()  # in place: the policy counts into this very Counter
        pending.rejected.clear()
        pending.unkeyed = Counter()
        rates = [
            rate_record(rate)
            for part in self.state.partitions.values()
            for rate in part.shared_rates()
        ]
        return BatchOutput(dead, logged, counts, tripped, rates)

    def apply(
        self, tp: TopicPartition, part: PartitionState, records: Sequence[Record], now: float
    ) -> list[tuple[InvalidEvent, Record]]:
        """Decode, validate and count each record (one batch of `part`: see
        `PartitionState.batch`); the rejected ones with why."""
        rejected: list[tuple[InvalidEvent, Record]] = []
        part.batch()
        try:
            self._apply_each(tp, part, records, now, rejected)
        finally:
            part.flush()
        return rejected

    def _apply_each(
        self,
        tp: TopicPartition,
        part: PartitionState,
        records: Sequence[Record],
        now: float,
        rejected: list[tuple[InvalidEvent, Record]],
    ) -> None:
        limits = self.limits
        processed = self._counts.processed
        for record in records:
            try:
                if record.key is None:
                    self._unkeyed(tp.topic)
                event, occurred = decode_timed(record.value, limits, now)
                part.apply(event, now, occurred)
            except InvalidEvent as error:
                # Without its traceback: the frames it holds would keep the whole batch alive
                # until a (deliberately rare, see `tune_gc`) full collection.
                rejected.append(
                    (_bare(error.located(tp.topic, tp.partition, record.offset)), record)
                )
            except Exception as exc:  # a bug of ours must not stop the fleet on one event
                rejected.append((_internal_error(exc, tp, record.offset), record))
            else:
                processed[event.type] += 1

    def _unkeyed(self, topic: str) -> None:
        """Count an input record without a Kafka key (warned once per topic); with
        `require_keys` raise `InvalidEvent("unkeyed")`, so it is dead-lettered."""
        if not self.state.unkeyed[topic] and not self._counts.unkeyed[topic]:
            log.warning(
                "records without a key on %s: resends may land on another partition and count "
                "twice, and joins may miss pairs; key them as the README's 'Keys' says (counted "
                "in pulse_unkeyed_events_total; PULSE_KEY_POLICY=require dead-letters them)",
                topic,
            )
        self._counts.unkeyed[topic] += 1
        if self.require_keys:
            raise InvalidEvent("unkeyed", "no Kafka key (PULSE_KEY_POLICY=require)")

    @property
    def pending(self) -> Counts:
        """Counts of records applied but not yet returned by `read` (tests look at them)."""
        return self._counts

    def close(self, out: BatchOutput, now: float, clock: float) -> None:
        """The KPI and anomaly records of the windows this batch closed, then expiry.

        `clock` is the event time completeness judges sources by (see `judging_clock`). Windows
        that closed are read before expiry may drop their minutes.
        """
        closing, final = self.kpis.due()
        out.kpi_records = self.kpis.records(closing, final)
        change = self.state.config.restatement_alert_change
        out.counts.restated.update((v.kpi, material(v, change)) for v in final if v.revision > 1)
        out.partial_records = self.kpis.partial_records()
        out.anomaly_records = self._detect(closing + final, now, clock)
        shown = self.state.watermark()
        for part in self.state.partitions.values():
            part.expire(shown)

    def _detect(
        self, values: list[KpiValue], now: float, clock: float
    ) -> list[tuple[bytes, bytes]]:
        """Feed closed windows and source freshness to the detectors; the alert records due."""
        watch = self.watch
        if watch is None:
            return []
        started = time.perf_counter()
        for part in self.state.partitions.values():
            for source, newest in part.newest.items():
                watch.observe_event(source, newest)
        if not self.score_values:
            values = []
        events = watch.observe_values(values, clock, now)
        self.detect_seconds += time.perf_counter() - started
        self.detect_values += len(values)
        for event in events:
            log_anomaly(event)
        return [anomaly_record(e, now) for e in events]


def _dead_letter(error: InvalidEvent, record: Record, now: float) -> DeadLetter:
    """The dead letter of one input record, with its original headers and timestamp."""
    return dead_letter(
        error,
        record.key,
        record.value,
        now,
        headers=list(record.headers or ()),
        timestamp_ms=record.timestamp,
    )


def _internal_error(exc: Exception, tp: TopicPartition, offset: int) -> InvalidEvent:
    """An unexpected exception while handling one event: a bug of ours, logged as an ERROR
    with its traceback and dead-lettered as `internal_error` (the event may be partly counted:
    fix the bug, then replay the dead letter's original bytes)."""
    log.error(
        "internal error on %s[%d]@%d, dead-lettered: %r",
        tp.topic,
        tp.partition,
        offset,
        exc,
        exc_info=exc,
    )
    detail = f"{type(exc).__name__}: {exc}"
    _bare(exc)  # logged above; see `_bare`
    return InvalidEvent("internal_error", detail).located(tp.topic, tp.partition, offset)


def _bare(error: E) -> E:
    """`error` without its traceback and the exceptions it was raised from or during (their
    frames would keep the whole batch alive until a full collection, which `tune_gc` makes
    rare: 100k rejections grew RSS by 163 MB with them, 13 MB without)."""
    error.__traceback__ = error.__context__ = error.__cause__ = None
    return error
