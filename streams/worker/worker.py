"""The worker: Kafka in, core state updated in batches, changelog and dead letters out.

(A little over 400 lines: start-up order, the loop and its two commit paths stay in one place so
the order of effects reads top to bottom; the batch step, recovery, health and configuration have
modules of their own.)

Thin on purpose: it moves batches between Kafka and the batch step (`streams.worker.batch`),
which makes every decision through the core. One loop per worker:

    getmany (a batch per owned partition)
      → BatchStep.read: decode + validate + apply per event (pure core, in memory)
      → BatchStep.close: KPI and anomaly records of the windows the batch closed
      → dead letters produced and acknowledged
      → the changelog records of every partition (changed keys + next offset) acknowledged
      → offsets committed (advisory; the changelog is the source of truth)

Besides looping, a worker provisions its topics and chooses its guarantee at start (`run`),
rebuilds assigned partitions from the changelog (`streams.worker.recovery`), and answers the
probes (`streams.worker.health`).

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

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from streams.core import CATALOG, BadEventGuard, Catalog, WorkerState
from streams.detection.completeness import Completeness
from streams.detection.watch import IDLE_STEPS, AnomalyWatch
from streams.errors import BrokerError
from streams.export.http import MetricsServer
from streams.export.metrics import build_registry
from streams.export.names import WORKER_SCOPE
from streams.export.page import Page, PageSources
from streams.kafka.anomalies import anomaly_record, log_anomaly
from streams.kafka.changelog import ChangelogWriter, offsets
from streams.kafka.clients import (
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
from streams.kafka.connection import KafkaTarget, preflight
from streams.kafka.deadletter import DeadLetter
from streams.kafka.guarantee import Delivery, open_delivery
from streams.kafka.kpi_topic import PARTIALS_PARTITIONS, KpiPublisher
from streams.kafka.partitioner import PartitionerCheck
from streams.kafka.rates import RatesTable
from streams.kafka.sends import Message, acknowledged, send_all
from streams.settings import Settings
from streams.worker.batch import BatchOutput, BatchStep, Counts
from streams.worker.config import state_config
from streams.worker.health import Health
from streams.worker.recovery import Rebalance, by_topic, fetched_after_seek, rebuild

log = logging.getLogger(__name__)

COMMIT_INTERVAL_S = 1.0


class Worker:
    """One kpi-pulse worker. `await run(stop)` until `stop` is set or a fatal error is raised."""

    def __init__(
        self, settings: Settings, bootstrap: KafkaTarget, catalog: Catalog = CATALOG
    ) -> None:
        """`catalog`: the KPI catalog's data, the real one but in `pulse bench --catalog`."""
        self.settings = settings
        self.bootstrap = bootstrap
        self.state = WorkerState(state_config(settings, catalog))
        merged = settings.merge_stage
        self.kpis = KpiPublisher(self.state, own_values=not merged, partials=merged)
        self.watch = (
            AnomalyWatch(
                self.state.config.catalog,
                completeness=Completeness(min_silence=settings.stale_after_seconds),
                max_series=settings.max_watched_series,
                idle_steps=IDLE_STEPS,
            )
            if settings.detection
            else None
        )
        self.changelog = ChangelogWriter(
            bootstrap, settings.changelog_topic, settings.changelog_snapshot_records
        )
        self.step = BatchStep(
            self.state,
            limits=settings.validation_limits,
            guard=BadEventGuard(settings.max_bad_ratio, settings.bad_ratio_window),
            changelog=self.changelog,
            kpis=self.kpis,
            watch=self.watch,
            require_keys=settings.key_policy == "require",
            score_values=not merged,
        )
        self.health = Health(settings.liveness_timeout_seconds, settings.batch_max_records)
        self.rebalances = 0
        """Partition assignments received (the service board's rebalance count)."""
        self.registry = build_registry(
            self.state,
            lag=self.lag,
            rebalances=lambda: self.rebalances,
            watch=self.watch,
            detector_cost=self.detector_cost,
            bands=settings.export_bands,
            scope=WORKER_SCOPE if merged else None,
        )
        self.server = MetricsServer(
            self.registry,
            settings.metrics_host,
            settings.metrics_port,
            self.liveness,
            self.readiness,
            page=Page(PageSources(self.state, self.watch, self.lag)),
        )
        self.serving = asyncio.Event()
        """Set once /metrics is bound (`server.url` is then final)."""
        self.assigned = asyncio.Event()
        """Set once partitions are assigned and their state recovered."""
        self._lock = asyncio.Lock()
        self._inflight: list[asyncio.Future[object]] = []
        self._inflight_offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        self._inflight_counts: list[Counts] = []
        """Counts of batches sent and not yet acknowledged: they reach the exported counters
        only once durable, so a batch read again after a crash is not counted twice across the
        worker's lifetimes."""
        self._consumer: AIOKafkaConsumer | None = None
        self._sought: dict[TopicPartition, int] = {}
        """Partitions recovery moved to their changelog's offset, until their first batch
        (`streams.worker.recovery.fetched_after_seek`)."""
        self.partitioner = PartitionerCheck({})  # warns of keys not where murmur2 puts them
        self.delivery: Delivery | None = None
        """The producer and the processing guarantee, decided at start."""

    @property
    def consumed(self) -> int:
        """Records read (valid or not)."""
        return self.step.consumed

    def detector_cost(self) -> float:
        return self.step.detect_seconds

    def detector_values(self) -> int:
        """Closed-window values fed to the detection so far."""
        return self.step.detect_values

    def liveness(self) -> tuple[bool, dict[str, object]]:
        return self.health.liveness()

    def readiness(self) -> tuple[bool, dict[str, object]]:
        guarantee = self.delivery.guarantee if self.delivery else None
        return self.health.readiness(len(self.state.partitions), self.assigned.is_set(), guarantee)

    def lag(self) -> Iterable[tuple[str, int, int]]:
        return [(tp.topic, tp.partition, n) for tp, n in sorted(self.health.lag.items())]

    async def run(self, stop: asyncio.Event) -> None:
        quiet_kafka_logs()
        await self.server.start()  # first: a port that cannot be bound fails before the broker
        self.serving.set()
        log.info("worker serving %s", self.server.url)
        try:
            await self._run(stop)
        finally:
            await self.server.stop()

    async def _run(self, stop: asyncio.Event) -> None:
        settings = self.settings
        await preflight(self.bootstrap)  # credentials, CA and protocol, each named if wrong
        partitions = {t: await topic_partitions(self.bootstrap, t) for t in settings.input_topics}
        self.partitioner = PartitionerCheck(partitions)
        await ensure_topics(
            self.bootstrap,
            [
                TopicSpec(settings.deadletter_topic, 1, config=dict(KEEP_A_WEEK)),
                TopicSpec(settings.kpi_topic, 3, config=dict(COMPACTED)),
                *self._merge_topics(),
                TopicSpec(settings.anomalies_topic, 1, config=dict(KEEP_A_WEEK)),
                TopicSpec(settings.rates_topic, 1, config=dict(COMPACTED)),
                *(
                    TopicSpec(
                        settings.changelog_topic(t),
                        n,
                        config=dict(KEEP_FOREVER),
                        check_partitions=True,
                    )
                    for t, n in partitions.items()
                ),
            ],
        )
        delivery = self.delivery = await open_delivery(self.bootstrap, settings)
        producer = delivery.producer
        consumer = self._consumer = new_consumer(
            self.bootstrap,
            group_id=settings.consumer_group,
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=max(1000, settings.session_timeout_ms // 5),
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
        )
        rates = RatesTable(self.bootstrap, settings.rates_topic, self.state.config.fx)
        try:
            await rates.start(stop)  # every rate known so far, before any input is consumed
            await start_client(consumer, self.bootstrap)
            listener = Rebalance(self.health, self.recover, self.revoke)
            consumer.subscribe(list(settings.input_topics), listener=listener)
            self.health.running = True
            await self._loop(consumer, producer, stop)
            await self._settle()
            rates.raise_failure()
        finally:
            self.health.running = False
            await rates.stop()
            await consumer.stop()
            await producer.stop()

    def _merge_topics(self) -> list[TopicSpec]:
        """The partials topic, when a merge stage reads it (`PULSE_MERGE_STAGE`)."""
        if not self.settings.merge_stage:
            return []
        topic = self.settings.partials_topic
        return [TopicSpec(topic, PARTIALS_PARTITIONS, config=dict(COMPACTED))]

    async def _loop(
        self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, stop: asyncio.Event
    ) -> None:
        next_commit = time.monotonic() + COMMIT_INTERVAL_S
        committable: dict[TopicPartition, OffsetAndMetadata] = {}
        while not stop.is_set():
            self.health.beat = time.monotonic()
            batches = await consumer.getmany(
                timeout_ms=100, max_records=self.settings.batch_max_records
            )
            if self.health.fatal is not None:  # before anything read on half-rebuilt state
                raise self.health.fatal
            async with self._lock:
                # Again under the lock: a recovery that failed while this fetch waited for it
                # must not see its records counted on the partly rebuilt state.
                if self.health.fatal is not None:
                    raise self.health.fatal
                batches = await fetched_after_seek(batches, self._sought, consumer)
                if batches:
                    self.health.last_records = time.monotonic()
                    committable.update(await self._process(batches, consumer, producer))
                else:
                    await self.health.refresh_lag(consumer, self.state)
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
        for tp, records in batches.items():
            self.partitioner.observe(tp.topic, tp.partition, records)
        out = self.step.read(batches, now)
        await self.health.refresh_lag(consumer, self.state)
        self.step.close(out, now, self._clock(now))
        # A tripped bad-event guard stops the worker only once this batch (its dead letters and
        # checkpoints) is durable: a restart then resumes after what was read, instead of
        # dying on the same burst forever.
        if self.delivery is not None and self.delivery.transactional:
            await self._commit_batch(producer, out)
            out.counts.add_to(self.state)
            if out.tripped is not None:
                raise out.tripped
            return {}  # the offsets went with the transaction
        # Pipelined, one batch deep: this batch's dead letters are acknowledged together with the
        # previous batch's changelog and KPI records, then this batch's changelog and KPI records
        # are sent and acknowledged while the next batch is processed. So dead letters are
        # durable before the checkpoint that moves past them, and changelog records of a
        # partition are written in order (one batch's are acknowledged before the next's go).
        dead_sent = await send_all(producer, self._dead_messages(out.dead))
        # Rates go with the dead letters, durable before the checkpoint that moves past their
        # events: a crash in between replays the batch, which counts and forwards them again.
        dead_sent += await send_all(producer, self._rate_messages(out.rate_records))
        settled = await self._settle(dead_sent)
        self._inflight_counts.append(out.counts)
        logged = await send_all(producer, self.changelog.messages(out.logged))
        self.changelog.sent(out.logged, logged)
        self._inflight = list(logged)
        # KPI records go after the changelog: a crash in between republishes the same keys.
        self._inflight += await send_all(producer, self._kpi_messages(out.kpi_records))
        self._inflight += await send_all(producer, self._partial_messages(out.partial_records))
        self._inflight += await send_all(producer, self._anomaly_messages(out.anomaly_records))
        self._inflight_offsets = offsets(out.logged)
        if out.tripped is not None:
            settled |= await self._settle()
            with contextlib.suppress(KafkaError):
                await consumer.commit(settled)
            raise out.tripped
        return settled

    async def _commit_batch(self, producer: AIOKafkaProducer, out: BatchOutput) -> None:
        """Exactly-once: the batch's outputs and its input offsets in one Kafka transaction.

        Every send is acknowledged before the offsets join the transaction: a failed send that
        is not awaited does not stop `commit`, which would commit the input offsets of a batch
        whose changelog the broker refused. Any failure aborts the transaction and stops the
        worker (`BrokerError`); whoever owns the partitions next reads the batch again from the
        changelog's offset.
        """
        try:
            async with producer.transaction():
                sends = await send_all(producer, self._dead_messages(out.dead))
                sends += await send_all(producer, self._rate_messages(out.rate_records))
                logged = await send_all(producer, self.changelog.messages(out.logged))
                sends += logged
                sends += await send_all(producer, self._kpi_messages(out.kpi_records))
                sends += await send_all(producer, self._partial_messages(out.partial_records))
                sends += await send_all(producer, self._anomaly_messages(out.anomaly_records))
                await acknowledged(sends)
                if out.logged:
                    await producer.send_offsets_to_transaction(
                        offsets(out.logged), self.settings.consumer_group
                    )
        except KafkaError as exc:
            raise BrokerError(
                f"a batch's transaction was aborted ({exc!r}); stopping so that the batch is "
                "read again from the changelog's offset"
            ) from exc
        self.changelog.sent(out.logged, logged)
        await self.changelog.cut()  # committed: the snapshots are what a new owner reads first

    def _dead_messages(self, dead: list[DeadLetter]) -> Iterable[Message]:
        topic = self.settings.deadletter_topic
        return ((topic, d.key, d.value, d.headers, None) for d in dead)

    def _kpi_messages(self, records: list[tuple[bytes, bytes]]) -> Iterable[Message]:
        topic = self.settings.kpi_topic
        return ((topic, key, value, None, None) for key, value in records)

    def _rate_messages(self, records: list[tuple[bytes, bytes]]) -> Iterable[Message]:
        topic = self.settings.rates_topic
        return ((topic, key, value, None, None) for key, value in records)

    def _partial_messages(self, records: list[tuple[bytes, bytes]]) -> Iterable[Message]:
        topic = self.settings.partials_topic
        return ((topic, key, value, None, 0) for key, value in records)

    def _anomaly_messages(self, records: list[tuple[bytes, bytes]]) -> Iterable[Message]:
        topic = self.settings.anomalies_topic
        return ((topic, key, value, None, None) for key, value in records)

    def _clock(self, now: float) -> float:
        return self.health.clock(self.state.watermark(), now, self.settings.watermark_delay_seconds)

    async def _tick(self, producer: AIOKafkaProducer) -> None:
        """Between batches: judge the sources against the clock (silence is news too)."""
        if self.watch is None or not self.state.partitions:
            return
        now = time.time()
        events = self.watch.check_sources(self._clock(now))
        for event in events:
            log_anomaly(event)
        records = [anomaly_record(e, now) for e in events]
        if records and self.delivery is not None and self.delivery.transactional:
            async with producer.transaction():
                await acknowledged(await send_all(producer, self._anomaly_messages(records)))
            return
        self._inflight += await send_all(producer, self._anomaly_messages(records))

    async def _settle(
        self, also: list[asyncio.Future[object]] | None = None
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        """Wait for the sends in flight (and `also`); return the offsets they made durable."""
        if self._inflight or also:
            await acknowledged([*self._inflight, *(also or ())])
        for counts in self._inflight_counts:
            counts.add_to(self.state)
        self._inflight_counts = []
        settled, self._inflight, self._inflight_offsets = self._inflight_offsets, [], {}
        await self.changelog.cut()
        return settled

    async def recover(self, assigned: Iterable[TopicPartition]) -> None:
        """Rebuild the state of newly assigned partitions from the changelog and seek past it."""
        consumer = self._consumer
        assert consumer is not None
        grouped = by_topic(assigned)
        started = time.monotonic()
        self.health.recovering = True
        try:
            async with self._lock:
                applied, resume = await rebuild(
                    self.state,
                    self.changelog,
                    self.bootstrap,
                    self.settings.changelog_topic,
                    grouped,
                    committed_only=self.delivery is not None and self.delivery.transactional,
                )
                for tp, next_offset in resume.items():
                    consumer.seek(tp, next_offset)
                self._sought.update(resume)
        finally:
            self.health.recovering = False
            self.health.beat = time.monotonic()
        log.info(
            "assigned %s; replayed %d changelog records in %.2fs",
            sorted(f"{t}[{p}]" for t, ps in grouped.items() for p in ps),
            applied,
            time.monotonic() - started,
        )
        self.rebalances += 1
        self.kpis.reset()
        if self.watch is not None:
            self.watch.reset()  # its series were sums over the partitions owned before
        self.assigned.set()

    async def revoke(self, revoked: Iterable[TopicPartition]) -> None:
        async with self._lock:  # waits for the batch in progress to be checkpointed
            await self._settle()  # ... and acknowledged, so a new owner replays all of it
            for tp in revoked:
                self.state.revoke((tp.topic, tp.partition))
                self.health.lag.pop(tp, None)
                self._sought.pop(tp, None)
                self.changelog.forget(tp)
