"""The merge stage's Faust app, built from our `Settings` (no module-level app, no settings of
its own).

What Faust is asked to do, and why (FIELD-NOTES, measured on these machines):
- `broker_session_timeout=10`: joining a group takes half the session timeout on the embedded
  broker (the default 60 s meant ~30 s before the first partial; 10 s gives ~5-7 s).
- `web_enabled=False`: Faust's web server binds 0.0.0.0 unless `web_bind` is set, and its
  `tables` view serves table contents. The stage's probes and gauges are ours to serve.
- `processing_guarantee="at_least_once"`: the embedded broker has no transactions. A partial
  replaces the previous one of its key, so reading one twice changes nothing.
- `topic_disable_leader=True`: no `__assignor-__leader` topic to create; one app per group.
- `datadir`: a directory the caller owns (a temporary one): Faust makes `<app id>-data` in the
  working directory otherwise, even for in-memory tables.
- The faust, mode and aiokafka loggers at WARNING: records are built even when filtered later
  (~13% of CPU).

Three defects are worked around here, each covered by tests/integration/test_merge_stage.py:
- the offsets of records read are committed without waiting for the table writes they caused
  (`TrackedTable`: the commit waits for them);
- table recovery ends where the broker's ListOffsets says, which the embedded broker states one
  batch short (`CommittedThread._highwaters`: ends from a fetch);
- faust-streaming 0.15.3's gap of skipped offsets (`GapConsumer`): when the offsets it reads jump
  (transaction markers: workers publish partials in Kafka transactions on Apache Kafka;
  compaction), it records the missing offsets as a gap, but one too many: the range includes the
  record just read, which is acked as well. The duplicate breaks the run of consecutive offsets
  Faust commits up to, so each commit passes one duplicate only and the committed offset falls
  further behind with every worker transaction. Measured on Apache Kafka (restart test, 24
  partials with 4 markers): committed offset 17 after a clean stop, and the restarted stage
  handled 9-20 records again; with the workaround, 0 (tests/integration/test_merge_stage.py).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import faust
from aiokafka import TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.auth import CredentialsT

from streams.kafka.clients import new_consumer, quiet_kafka_logs, start_client
from streams.kafka.connection import KafkaTarget, as_connection
from streams.kafka.kpi_topic import PARTIALS_PARTITIONS
from streams.settings import Settings

SESSION_TIMEOUT_S = 10
FETCH_END_S = 10.0
"""How long `fetched_ends` waits for a fetch (the listed ends stand after that)."""


def quiet_faust_logs() -> None:
    quiet_kafka_logs()
    for name in ("faust", "mode"):
        logging.getLogger(name).setLevel(logging.WARNING)


class CommittedThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, reading `read_committed`."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Faust reads read_committed only when the app itself runs transactions; the workers
        # write partials in transactions (Apache Kafka), and a partial of an aborted batch must
        # not count. aiokafka passes this to its fetcher when the consumer starts.
        consumer._isolation_level = "read_committed"
        return consumer

    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        # Where Faust's table recovery ends (the last offset it reads is this - 1).
        listed = await super()._highwaters(partitions)
        transport: GapTransport = self.consumer.transport  # type: ignore[assignment]
        return await fetched_ends(transport.kafka, listed)


async def fetched_ends(kafka: KafkaTarget, listed: Mapping[TP, int]) -> dict[TP, int]:
    """Each partition's end offset as a fetch states it (its high-water mark), never below the
    one listed.

    The embedded broker's ListOffsets answers the last batch's base offset + 1 (FIELD-NOTES):
    when the last write of a table's changelog shared a batch with the one before (a window
    deleted and the next marked published, measured), Faust's recovery stopped short of it and
    the table came back without that write, although the offsets covering it were committed.
    A fetch from just before the listed end reports the true high-water mark.
    """
    if not listed:
        return {}
    consumer = new_consumer(kafka, group_id=None)
    await start_client(consumer, kafka)
    try:
        parts = {TopicPartition(tp.topic, tp.partition): tp for tp in listed}
        consumer.assign(list(parts))
        for part, tp in parts.items():
            consumer.seek(part, max(listed[tp] - 1, 0))
        fetched: dict[TP, int] = {}
        deadline = time.monotonic() + FETCH_END_S
        while len(fetched) < len(parts) and time.monotonic() < deadline:
            await consumer.getmany(timeout_ms=200, max_records=1)
            for part, tp in parts.items():
                highwater = consumer.highwater(part)
                if highwater is not None:
                    fetched[tp] = int(highwater)
    finally:
        await consumer.stop()
    return {tp: max(end, fetched.get(tp, end)) for tp, end in listed.items()}


class GapConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, reading committed records only, with the gap of skipped
    offsets ending before the record read."""

    def _new_consumer_thread(self) -> CommittedThread:
        return CommittedThread(self, loop=self.loop, beacon=self.beacon)

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        # Faust calls this with (last offset read + 1, offset of the record just read).
        await super()._add_gap(tp, offset_from, offset_to - 1)

    async def _commit_tps(self, tps: Iterable[TP], start_new_transaction: bool) -> bool:
        # Offsets only after the table writes of the records they cover (see TrackedTable).
        await acknowledged(self.transport)
        return bool(await super()._commit_tps(tps, start_new_transaction))


class GapTransport(faust_aiokafka.Transport):
    Consumer = GapConsumer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kafka: KafkaTarget = ""
        """How the stage connects (set by `build_app`)."""
        self.unacknowledged: set[asyncio.Future[Any]] = set()
        """Changelog records of the app's tables sent and not yet acknowledged."""


class TrackedTable(faust.Table[Any, Any]):
    """A Faust table whose changelog records are tracked until the broker acknowledges them.

    Faust sends a table's changelog records through a buffer, and with `at_least_once` commits
    the offsets of the records read without waiting for them: a stop or crash can then leave
    offsets committed whose table writes were never written (its buffer's flush on stop gives up
    after 0.1 s without progress). Seen as a window's published mark recovered as unpublished
    after a clean stop (tests/integration/test_merge_stage.py). `GapConsumer` waits for every
    tracked record before it commits, so a committed offset's writes are durable.
    """

    def send_changelog(self, *args: Any, **kwargs: Any) -> Any:
        sent = super().send_changelog(*args, **kwargs)
        transport: GapTransport = self.app.transport  # type: ignore[assignment]
        pending = transport.unacknowledged
        pending.add(sent)
        sent.add_done_callback(pending.discard)
        return sent


async def acknowledged(transport: Any) -> None:
    """Wait until every tracked changelog record is acknowledged (raises a failed send's
    error: the commit fails and Faust's consumer crashes, which stops the stage)."""
    pending: set[asyncio.Future[Any]] = transport.unacknowledged
    while pending:
        await asyncio.gather(*list(pending))


def faust_credentials(kafka: KafkaTarget) -> CredentialsT | None:
    """The connection's TLS and SASL as Faust credentials (None: PLAINTEXT), so the stage's
    consumer, producer and table changelogs connect as every other client of kpi-pulse."""
    conn = as_connection(kafka)
    options = conn.options
    context = options.get("ssl_context")
    ssl_context = context if isinstance(context, ssl.SSLContext) else None
    if conn.protocol.startswith("SASL_"):
        return faust.SASLCredentials(
            username=str(options["sasl_plain_username"]),
            password=str(options["sasl_plain_password"]),
            ssl_context=ssl_context,  # SASL_SSL with a context, else SASL_PLAINTEXT
            mechanism=str(options["sasl_mechanism"]),
        )
    if conn.protocol == "SSL":
        return faust.SSLCredentials(ssl_context)
    return None


def build_app(settings: Settings, kafka: KafkaTarget, datadir: Path) -> faust.App:
    """A Faust app for the merge stage: group and table changelogs named after
    `settings.merge_app_id`, in-memory tables rebuilt from their changelogs on start."""
    quiet_faust_logs()
    bootstrap = as_connection(kafka).bootstrap
    app = faust.App(
        settings.merge_app_id,
        broker=f"kafka://{bootstrap}",
        broker_credentials=faust_credentials(kafka),
        autodiscover=False,
        datadir=datadir,
        web_enabled=False,
        broker_session_timeout=SESSION_TIMEOUT_S,
        processing_guarantee="at_least_once",
        store="memory://",
        topic_partitions=PARTIALS_PARTITIONS,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        key_serializer="json",
        value_serializer="json",
        Table=TrackedTable,
    )
    transport = GapTransport(app.conf.broker_consumer, app)
    transport.kafka = kafka
    app.transport = transport
    return app
