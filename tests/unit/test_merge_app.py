"""The merge stage's Faust app is built from our settings, with the workarounds FIELD-NOTES
measured (no broker needed: the app is only configured here)."""

from __future__ import annotations

import logging
from pathlib import Path

from faust.types import TP

from streams.merge.app import GapConsumer, build_app
from streams.settings import Settings


def test_the_faust_app_comes_from_our_settings_with_the_measured_workarounds(
    tmp_path: Path,
) -> None:
    settings = Settings(topic_prefix="acme", metrics_port=0)
    conf = build_app(settings, "127.0.0.1:9092", tmp_path).conf
    assert conf.datadir == tmp_path  # not <app id>-data in the working directory
    assert conf.id == "acme-merge"  # consumer group and table changelog prefix
    assert conf.broker_session_timeout == 10  # joining takes half of it (default 60 s: ~30 s)
    assert conf.web_enabled is False  # else bound to 0.0.0.0, serving table contents
    assert conf.processing_guarantee.value == "at_least_once"  # the embedded broker: no EOS
    assert conf.topic_disable_leader is True
    for name in ("faust", "mode", "aiokafka"):  # records are built even when filtered later
        assert logging.getLogger(name).level == logging.WARNING


async def test_a_gap_of_skipped_offsets_ends_before_the_record_read(tmp_path: Path) -> None:
    """Faust 0.15.3 records offsets 4..5 as a gap when it reads 5 after 3 (a transaction marker
    at 4), and acks 5 too: the duplicate 5 held commits back. With `GapConsumer` the gap is 4
    alone and the offset to commit after acking 0-3 and 5-9 is 10."""
    settings = Settings(topic_prefix="acme", metrics_port=0)
    consumer = build_app(settings, "127.0.0.1:9092", tmp_path).consumer
    assert isinstance(consumer, GapConsumer)
    tp = TP("acme.partials", 0)
    await consumer._add_gap(tp, 4, 5)  # as Faust calls it: (last read + 1, offset just read)
    assert [(i.begin, i.end) for i in consumer._gap[tp]] == [(4, 5)]
    consumer._acked[tp].extend([0, 1, 2, 3, 5, 6, 7, 8, 9])
    assert consumer._new_offset(tp) == 10


async def test_the_stage_reads_committed_partials_only(tmp_path: Path) -> None:
    """Workers write partials in Kafka transactions (Apache Kafka): a partial of an aborted batch
    must not count. Faust alone reads `read_committed` only when the app runs transactions."""
    app = build_app(Settings(topic_prefix="acme", metrics_port=0), "127.0.0.1:9092", tmp_path)
    consumer = app.consumer._thread._create_worker_consumer(app.transport)
    try:
        assert consumer._isolation_level == "read_committed"
    finally:
        await consumer.stop()  # never started: closes its client
