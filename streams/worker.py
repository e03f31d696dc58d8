"""The worker: Kafka in, core state updated in batches, changelog and dead letters out.

Thin on purpose: it moves messages and state; every decision is made by the core
(`streams.core`) and the dead-letter policy (`streams.deadletter`). One loop per worker:

    getmany (a batch per owned partition)
      → decode + validate + apply per event (pure core, in memory)
      → dead letters produced and acknowledged
      → one changelog record per partition (changed keys + next offset) acknowledged
      → offsets committed (advisory; the changelog is the source of truth)

Why not a Faust agent per event: on these machines Faust's per-event machinery alone costs about
125 µs (~8k events/s) and each table write adds a changelog send, which caps a per-event agent near
1-2% of what the plain consumer reaches. Batching state updates in the core and writing one
changelog record per partition per batch keeps the same guarantees at a fraction of the cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.records_to_delete import RecordsToDelete
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from streams.anomalies import anomaly_record
from streams.changelog import encode, key_for, replay
from streams.core import (
    BadEventGuard,
    FxTable,
    KpiValue,
    PartitionState,
    StateConfig,
    ValidationLimits,
    Windows,
    WorkerState,
    compile_catalog,
    decode_event,
)
from streams.core.cardinality import CardinalityGuard
from streams.core.completeness import Completeness, judging_clock
from streams.core.watch import AnomalyEvent, AnomalyWatch
from streams.deadletter import DeadLetter, DeadLetterPolicy, dead_letter
from streams.errors import InvalidEvent
from streams.guarantee import Delivery, open_delivery
from streams.http import MetricsServer
from streams.kafka import (
    COMPACTED,
    KEEP_A_WEEK,
    KEEP_FOREVER,
    TopicSpec,
    ensure_topics,
    new_consumer,
    quiet_kafka_logs,
    start_client,
    topic_partitions,
)
from streams.kpi_topic import KpiPublisher
from streams.metrics import build_registry
from streams.settings import Settings

log = logging.getLogger(__name__)

COMMIT_INTERVAL_S = 1.0
FAILED_CUTS_BEFORE_OFF = 2
"""Changelog cuts failed in a row before snapshots are turned off."""
QUIET_BEFORE_WALL_CLOCK_S = 10.0
"""Seconds without a record, caught up, before sources are judged by wall-clock time."""


def state_config(settings: Settings) -> StateConfig:
    """The core's configuration from the settings; compiles (and so checks) the KPI catalog."""
    return StateConfig(
        catalog=compile_catalog(),
        windows=Windows.for_timezone(ZoneInfo(settings.business_timezone)),
        watermark_delay=settings.watermark_delay_seconds,
        allowed_lateness=settings.allowed_lateness_seconds,
        dedupe_max_entries=settings.dedupe_max_entries,
        retained_windows=settings.retained_windows,
        fx=FxTable(settings.reporting_currency, settings.fx_rates),
        guard=CardinalityGuard(settings.max_dimension_values),
        join_max_entries=settings.join_max_entries,
    )


class Worker:
    """One kpi-pulse worker. `await run(stop)` until `stop` is set or a fatal error is raised."""

    def __init__(self, settings: Settings, bootstrap: str) -> None:
        self.settings = settings
        self.bootstrap = bootstrap
        self.state = WorkerState(state_config(settings))
        self.limits = ValidationLimits(settings.max_event_bytes, settings.max_future_skew_seconds)
        self.policy = DeadLetterPolicy(
            self.state, BadEventGuard(settings.max_bad_ratio, settings.bad_ratio_window)
        )
        self.kpis = KpiPublisher(self.state)
        self.watch = (
            AnomalyWatch(
                self.state.config.catalog,
                completeness=Completeness(min_silence=settings.stale_after_seconds),
            )
            if settings.detection
            else None
        )
        self.detect_seconds = 0.0
        """Time spent in detection (the detector cost on the service board)."""
        self.rebalances = 0
        """Partition assignments received (the service board's rebalance count)."""
        self.registry = build_registry(
            self.state, self.lag, self.watch, self.detector_cost, lambda: self.rebalances
        )
        self.server = MetricsServer(
            self.registry,
            settings.metrics_host,
            settings.metrics_port,
            self.liveness,
            self.readiness,
        )
        self.serving = asyncio.Event()
        """Set once /metrics is bound (`server.url` is then final)."""
        self.assigned = asyncio.Event()
        """Set once partitions are assigned and their state recovered."""
        self.consumed = 0
        self._lag: dict[TopicPartition, int] = {}
        self._lock = asyncio.Lock()
        self._inflight: list[asyncio.Future[object]] = []
        self._inflight_offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        self._running = False
        self._beat = time.monotonic()
        """When the consume loop last came round (liveness)."""
        self._last_records = time.monotonic()
        """When the consume loop last got records (see `QUIET_BEFORE_WALL_CLOCK_S`)."""
        self._logged: dict[TopicPartition, int] = {}
        """Changelog records per input partition since its last snapshot (or in its log)."""
        self._cuts: list[tuple[TopicPartition, asyncio.Future[object]]] = []
        """Snapshots sent and not yet cut before: (changelog partition, first record's send)."""
        self._snapshots = settings.changelog_snapshot_records > 0
        self._failed_cuts = 0
        self._recovering = False
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self.delivery: Delivery | None = None
        """The producer and the processing guarantee, decided at start."""

    def detector_cost(self) -> float:
        return self.detect_seconds

    def liveness(self) -> tuple[bool, dict[str, object]]:
        """Alive while the consume loop runs and keeps coming round (a stuck or dead loop fails
        after `liveness_timeout_seconds`; recovering partitions from the changelog counts as
        alive however long it takes)."""
        quiet = time.monotonic() - self._beat
        ok = self._running and (self._recovering or quiet < self.settings.liveness_timeout_seconds)
        return ok, {"running": self._running, "loop_quiet_seconds": round(quiet, 3)}

    def readiness(self) -> tuple[bool, dict[str, object]]:
        """Ready when alive, partitions are assigned, their state is recovered and the worker is
        caught up (at most one batch behind on every owned partition)."""
        alive, _ = self.liveness()
        owned = len(self.state.partitions)
        recovered = self.assigned.is_set() and not self._recovering
        behind = sum(self._lag.values())
        caught_up = owned > 0 and len(self._lag) >= owned
        caught_up = caught_up and behind <= self.settings.batch_max_records
        checks = {"alive": alive, "assigned": owned > 0, "recovered": recovered}
        checks["caught_up"] = caught_up
        guarantee = self.delivery.guarantee if self.delivery else None
        details: dict[str, object] = {**checks, "partitions": owned, "lag_messages": behind}
        details["guarantee"] = guarantee
        return all(checks.values()), details

    def lag(self) -> Iterable[tuple[str, int, int]]:
        return [(tp.topic, tp.partition, behind) for tp, behind in sorted(self._lag.items())]

    async def run(self, stop: asyncio.Event) -> None:
        quiet_kafka_logs()
        settings = self.settings
        partitions = {t: await topic_partitions(self.bootstrap, t) for t in settings.input_topics}
        await ensure_topics(
            self.bootstrap,
            [
                TopicSpec(settings.deadletter_topic, 1, config=dict(KEEP_A_WEEK)),
                TopicSpec(settings.kpi_topic, 3, config=dict(COMPACTED)),
                TopicSpec(settings.anomalies_topic, 1, config=dict(KEEP_A_WEEK)),
                *(
                    TopicSpec(settings.changelog_topic(t), n, config=dict(KEEP_FOREVER))
                    for t, n in partitions.items()
                ),
            ],
        )
        delivery = self.delivery = await open_delivery(self.bootstrap, settings)
        producer = self._producer = delivery.producer
        consumer = self._consumer = new_consumer(
            self.bootstrap,
            group_id=settings.consumer_group,
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=max(1000, settings.session_timeout_ms // 5),
        )
        try:
            await start_client(consumer, self.bootstrap)
            consumer.subscribe(list(settings.input_topics), listener=_Rebalance(self))
            await self.server.start()
            log.info("worker serving %s", self.server.url)
            self.serving.set()
            self._running = True
            await self._loop(consumer, producer, stop)
            await self._settle()
        finally:
            self._running = False
            await self.server.stop()
            await consumer.stop()
            await producer.stop()

    async def _loop(
        self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, stop: asyncio.Event
    ) -> None:
        next_commit = time.monotonic() + COMMIT_INTERVAL_S
        committable: dict[TopicPartition, OffsetAndMetadata] = {}
        while not stop.is_set():
            self._beat = time.monotonic()
            batches = await consumer.getmany(
                timeout_ms=100, max_records=self.settings.batch_max_records
            )
            async with self._lock:
                if batches:
                    self._last_records = time.monotonic()
                    committable.update(await self._process(batches, consumer, producer))
                else:
                    await self._refresh_lag(consumer)
                    await self._tick(producer)
                    if self._inflight:
                        committable.update(await self._settle())
            if committable and time.monotonic() >= next_commit:
                try:
                    await consumer.commit(committable)
                except KafkaError as exc:  # advisory only: recovery reads the changelog
                    log.warning("offset commit failed (will retry): %r", exc)
                committable = {}
                next_commit = time.monotonic() + COMMIT_INTERVAL_S

    async def _process(
        self,
        batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        now = time.time()
        limits = self.limits
        processed = self.state.processed
        dead: list[DeadLetter] = []
        checkpoints = []
        for tp, records in batches.items():
            part = self.state.partitions.get((tp.topic, tp.partition))
            if part is None:  # revoked while the fetch was in flight
                continue
            errors: list[InvalidEvent] = []
            for record in records:
                try:
                    event = decode_event(record.value, limits, now)
                    part.apply(event, now)
                except InvalidEvent as error:
                    errors.append(error.located(tp.topic, tp.partition, record.offset))
                    dead.append(dead_letter(error, record.key, record.value, now))
                else:
                    processed[event.type] += 1
            self.consumed += len(records)
            self.policy.record_batch(len(records), errors)
            next_offset = records[-1].offset + 1
            checkpoints += [(tp, record) for record in self._log_records(tp, part, next_offset)]
        await self._refresh_lag(consumer)
        # Windows that closed with this batch are read before expiry may drop their minutes.
        closing, final = self.kpis.due()
        kpi_records = self.kpis.records(closing, final)
        anomaly_records = self._detect(closing + final, now)
        shown = self.state.watermark()
        for part in self.state.partitions.values():
            part.expire(shown)
        # Pipelined, one batch deep: this batch's dead letters are acknowledged together with the
        # previous batch's changelog and KPI records, then this batch's changelog and KPI records
        # are sent and acknowledged while the next batch is processed. So dead letters are
        # durable before the checkpoint that moves past them, and changelog records of a
        # partition are written in order (one batch's are acknowledged before the next's go).
        if self.delivery is not None and self.delivery.transactional:
            await self._commit_batch(producer, dead, checkpoints, kpi_records, anomaly_records)
            return {}  # the offsets went with the transaction
        dead_sent = await _send_all(producer, self._dead_messages(dead))
        settled = await self._settle(dead_sent)
        logged = await _send_all(producer, self._checkpoint_messages(checkpoints))
        self._cuts += self._snapshot_sends(checkpoints, logged)
        self._inflight = list(logged)
        # KPI records go after the changelog: a crash in between republishes the same keys.
        self._inflight += await _send_all(producer, self._kpi_messages(kpi_records))
        self._inflight += await self._send_anomalies(producer, anomaly_records)
        self._inflight_offsets = _offsets(checkpoints)
        return settled

    async def _commit_batch(
        self,
        producer: AIOKafkaProducer,
        dead: list[DeadLetter],
        checkpoints: list[tuple[TopicPartition, dict[str, Any]]],
        kpi_records: list[tuple[bytes, bytes]],
        anomaly_records: list[tuple[bytes, bytes]],
    ) -> None:
        """Exactly-once: the batch's outputs and its input offsets in one Kafka transaction (an
        error aborts it and stops the worker; the batch is then replayed from the changelog's
        offset by whoever owns the partition next)."""
        async with producer.transaction():
            await _send_all(producer, self._dead_messages(dead))
            logged = await _send_all(producer, self._checkpoint_messages(checkpoints))
            self._cuts += self._snapshot_sends(checkpoints, logged)
            await _send_all(producer, self._kpi_messages(kpi_records))
            await self._send_anomalies(producer, anomaly_records)
            if checkpoints:
                await producer.send_offsets_to_transaction(
                    _offsets(checkpoints), self.settings.consumer_group
                )
        await self._cut_logs()  # committed: the snapshots are what a new owner reads first

    def _dead_messages(self, dead: list[DeadLetter]) -> Iterable[Message]:
        topic = self.settings.deadletter_topic
        return ((topic, d.key, d.value, d.headers, None) for d in dead)

    def _checkpoint_messages(
        self, checkpoints: list[tuple[TopicPartition, dict[str, Any]]]
    ) -> Iterable[Message]:
        """Each partition's checkpoint to the same partition of its changelog."""
        return (
            (
                self.settings.changelog_topic(tp.topic),
                key_for(tp.partition),
                encode(record),
                None,
                tp.partition,
            )
            for tp, record in checkpoints
        )

    def _kpi_messages(self, records: list[tuple[bytes, bytes]]) -> Iterable[Message]:
        topic = self.settings.kpi_topic
        return ((topic, key, value, None, None) for key, value in records)

    def _detect(self, values: list[KpiValue], now: float) -> list[tuple[bytes, bytes]]:
        """Feed closed windows and source freshness to the detectors; the alert records due."""
        watch = self.watch
        if watch is None:
            return []
        started = time.perf_counter()
        for part in self.state.partitions.values():
            for source, newest in part.newest.items():
                watch.observe_event(source, newest)
        events = watch.observe_values(values, self._clock(now), now)
        self.detect_seconds += time.perf_counter() - started
        for event in events:
            self._log_anomaly(event)
        return [anomaly_record(e, now) for e in events]

    async def _refresh_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Lag of every owned partition from the broker's high-water mark (fetch responses carry
        it even when they carry no records), so a quiet partition reads 0, not unknown; a
        partition read to its end no longer holds back the watermark for want of data. Before
        its first checkpoint a partition's progress is the consumer's position (a partition
        whose records all expired starts at its end, not at 0)."""
        for (topic, partition), part in list(self.state.partitions.items()):
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
            self._lag[tp] = max(0, highwater - read_to)
            if not self._lag[tp]:
                part.unread = False

    def _clock(self, now: float) -> float:
        """Event time for completeness: the watermark, or wall-clock time once caught up and
        quiet (so that a source silent in real time is stale even when nothing else moves)."""
        return judging_clock(
            self.state.watermark(),
            now,
            caught_up=bool(self._lag) and not any(self._lag.values()),
            quiet_for=time.monotonic() - self._last_records,
            quiet=QUIET_BEFORE_WALL_CLOCK_S,
            delay=self.settings.watermark_delay_seconds,
        )

    def _log_anomaly(self, event: AnomalyEvent) -> None:
        if event.alert == "data_stale":
            log.warning("data_stale %s: source %s", event.state, event.source)
            return
        dims = ",".join(f"{k}={v}" for k, v in event.dimensions)
        text = event.explanation.text if event.explanation else ""
        log.info(
            "anomaly %s (%s): %s{%s} window %s score %.2f %s",
            event.state,
            event.severity,
            event.kpi,
            dims,
            event.window,
            event.score,
            text,
        )

    async def _send_anomalies(
        self, producer: AIOKafkaProducer, records: list[tuple[bytes, bytes]]
    ) -> list[asyncio.Future[object]]:
        topic = self.settings.anomalies_topic
        return await _send_all(producer, ((topic, k, v, None, None) for k, v in records))

    async def _tick(self, producer: AIOKafkaProducer) -> None:
        """Between batches: judge the sources against the clock (silence is news too)."""
        if self.watch is None or not self.state.partitions:
            return
        now = time.time()
        events = self.watch.check_sources(self._clock(now))
        for event in events:
            self._log_anomaly(event)
        records = [anomaly_record(e, now) for e in events]
        if records and self.delivery is not None and self.delivery.transactional:
            async with producer.transaction():
                await self._send_anomalies(producer, records)
            return
        self._inflight += await self._send_anomalies(producer, records)

    async def _settle(
        self, also: list[asyncio.Future[object]] | None = None
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        """Wait for the sends in flight (and `also`); return the offsets they made durable."""
        if self._inflight or also:
            await asyncio.gather(*self._inflight, *(also or ()))
        settled, self._inflight, self._inflight_offsets = self._inflight_offsets, [], {}
        await self._cut_logs()
        return settled

    def _log_records(
        self, tp: TopicPartition, part: PartitionState, next_offset: int
    ) -> list[dict[str, Any]]:
        """The batch's changelog records for `tp`: its checkpoint or, once the log holds
        `changelog_snapshot_records` records since the last, a snapshot of the whole state."""
        logged = self._logged.get(tp, 0)
        if self._snapshots and logged >= self.settings.changelog_snapshot_records:
            records = part.snapshot(next_offset)
            self._logged[tp] = len(records)
            return records
        self._logged[tp] = logged + 1
        return [part.checkpoint(next_offset)]

    def _snapshot_sends(
        self,
        checkpoints: list[tuple[TopicPartition, dict[str, Any]]],
        sends: list[asyncio.Future[object]],
    ) -> list[tuple[TopicPartition, asyncio.Future[object]]]:
        """The sends of the first record of each snapshot, with their changelog partition."""
        return [
            (TopicPartition(self.settings.changelog_topic(tp.topic), tp.partition), sent)
            for (tp, record), sent in zip(checkpoints, sends, strict=True)
            if record.get("snapshot", (None,))[0] == 0
        ]

    async def _cut_logs(self) -> None:
        """Delete every changelog record before an acknowledged (committed) snapshot: the
        snapshot holds the whole state, so recovery reads from it. Two failed cuts in a row
        (a broker without DeleteRecords, like the embedded one) turn snapshots off."""
        cuts, self._cuts = self._cuts, []
        before = {
            tp: RecordsToDelete(sent.result().offset)  # type: ignore[attr-defined]
            for tp, sent in cuts
            if sent.done() and not sent.cancelled() and not sent.exception()
        }
        if not before or not self._snapshots:
            return
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10_000)
        try:
            await admin.start()
            cut = await admin.delete_records(before, timeout_ms=10_000)
            log.info("changelog cut before snapshots: %s", _partition_offsets(cut))
            self._failed_cuts = 0
        except (KafkaError, OSError, TimeoutError) as exc:
            # Twice in a row: unsupported (the embedded broker drops the connection) or not
            # allowed (an ACL); snapshots that are never cut would only lengthen the log.
            self._failed_cuts += 1
            if self._failed_cuts < FAILED_CUTS_BEFORE_OFF:
                log.warning("changelog cut failed (the next snapshot retries): %r", exc)
                return
            self._snapshots = False
            log.warning(
                "changelog cut failed again (%r): snapshots are off, and each partition's "
                "changelog grows until the topic's retention (the broker needs DeleteRecords)",
                exc,
            )
        finally:
            with contextlib.suppress(KafkaError, OSError):
                await admin.close()

    async def recover(self, assigned: Iterable[TopicPartition]) -> None:
        """Rebuild the state of newly assigned partitions from the changelog and seek past it."""
        consumer = self._consumer
        assert consumer is not None
        by_topic: dict[str, list[int]] = {}
        for tp in assigned:
            by_topic.setdefault(tp.topic, []).append(tp.partition)
        started = time.monotonic()
        self._recovering = True
        try:
            applied = await self._replay(consumer, by_topic)
        finally:
            self._recovering = False
            self._beat = time.monotonic()
        log.info(
            "assigned %s; replayed %d changelog records in %.2fs",
            sorted(f"{t}[{p}]" for t, ps in by_topic.items() for p in ps),
            applied,
            time.monotonic() - started,
        )
        self.rebalances += 1
        self.kpis.reset()
        if self.watch is not None:
            self.watch.reset()  # its series were sums over the partitions owned before
        self.assigned.set()

    async def _replay(self, consumer: AIOKafkaConsumer, by_topic: dict[str, list[int]]) -> int:
        """Fresh state for the partitions, rebuilt from their changelog; seek past it."""
        applied = 0
        async with self._lock:
            for topic, parts in by_topic.items():
                for p in parts:
                    self.state.partitions[(topic, p)] = self.state.new_partition()
                    self._logged[TopicPartition(topic, p)] = 0

                def apply(p: int, record: dict[str, object], topic: str = topic) -> None:
                    self.state.partitions[(topic, p)].restore(record)
                    tp = TopicPartition(topic, p)
                    self._logged[tp] = self._logged.get(tp, 0) + 1

                applied += await replay(
                    self.bootstrap,
                    self.settings.changelog_topic(topic),
                    parts,
                    apply,
                    committed_only=self.delivery is not None and self.delivery.transactional,
                )
                for p in parts:  # a backlog without a changelog: no progress known yet
                    part = self.state.partitions[(topic, p)]
                    part.unread = not part.has_data
                shown = self.state.watermark()
                for p in parts:
                    self.state.partitions[(topic, p)].expire(shown)
                    next_offset = self.state.partitions[(topic, p)].next_offset
                    if next_offset is not None:
                        consumer.seek(TopicPartition(topic, p), next_offset)
        return applied

    async def revoke(self, revoked: Iterable[TopicPartition]) -> None:
        async with self._lock:  # waits for the batch in progress to be checkpointed
            await self._settle()  # ... and acknowledged, so a new owner replays all of it
            for tp in revoked:
                self.state.revoke((tp.topic, tp.partition))
                self._lag.pop(tp, None)
                self._logged.pop(tp, None)


Message = tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]] | None, int | None]
"""(topic, key, value, headers, partition) of one record to send."""


def _partition_offsets(offsets: dict[TopicPartition, int]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]@{o}" for tp, o in sorted(offsets.items()))


def _offsets(
    checkpoints: list[tuple[TopicPartition, dict[str, Any]]],
) -> dict[TopicPartition, OffsetAndMetadata]:
    """The input offsets the checkpoints move past (committed as the group's progress)."""
    return {tp: OffsetAndMetadata(record["next_offset"], "") for tp, record in checkpoints}


async def _send_all(
    producer: AIOKafkaProducer,
    messages: Iterable[Message],
) -> list[asyncio.Future[object]]:
    """Hand messages to the producer; return their acknowledgement futures."""
    return [
        await producer.send(topic, value=value, key=key, headers=headers, partition=partition)
        for topic, key, value, headers, partition in messages
    ]


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: Worker) -> None:
        self._worker = worker

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._worker.revoke(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self._worker.recover(assigned)
