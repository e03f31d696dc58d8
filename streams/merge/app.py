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

One defect of faust-streaming 0.15.3 is worked around here (`GapConsumer`): when the offsets it
reads jump (transaction markers: workers publish partials in Kafka transactions on Apache Kafka;
compaction), it records the missing offsets as a gap, but one too many: the range includes the
record just read, which is acked as well. The duplicate breaks the run of consecutive offsets
Faust commits up to, so each commit passes one duplicate only and the committed offset falls
further behind with every worker transaction. Measured on Apache Kafka (restart test, 24
partials with 4 markers): committed offset 17 after a clean stop, and the restarted stage handled
9-20 records again; with the workaround, 0 (tests/integration/test_merge_stage.py).
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.auth import CredentialsT

from streams.kafka.clients import quiet_kafka_logs
from streams.kafka.connection import KafkaTarget, as_connection
from streams.kafka.kpi_topic import PARTIALS_PARTITIONS
from streams.settings import Settings

SESSION_TIMEOUT_S = 10


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


class GapConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, reading committed records only, with the gap of skipped
    offsets ending before the record read."""

    def _new_consumer_thread(self) -> CommittedThread:
        return CommittedThread(self, loop=self.loop, beacon=self.beacon)

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        # Faust calls this with (last offset read + 1, offset of the record just read).
        await super()._add_gap(tp, offset_from, offset_to - 1)


class GapTransport(faust_aiokafka.Transport):
    Consumer = GapConsumer


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
    )
    transport: Any = GapTransport(app.conf.broker_consumer, app)
    app.transport = transport
    return app
