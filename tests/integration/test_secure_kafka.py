"""A worker on a SASL_SSL listener of Apache Kafka, with certificates made by the test.

The broker (`secure_kafka`) has a PLAINTEXT and a SASL_SSL listener on one node, SCRAM and PLAIN
users, and a certificate signed by a CA the test made; a second CA signed nothing. One worker
reads over PLAINTEXT and one over SASL_SSL the same events (sent over each listener): both show
the revenue computed by hand. A wrong password and an untrusted CA stop `pulse worker` at once
with exit 1 and the setting named, before any topic is created; no password is in any output.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from events import at, order
from kafka_helpers import eventually, produce, read_until, revenue_of, scrape
from secure_kafka import PASSWORD, USER, Certificates, secure_cluster

from streams.kafka.clients import TopicSpec, ensure_topics, new_admin
from streams.kafka.connection import connection
from streams.merge.stage import MergeStage
from streams.settings import Settings
from streams.worker.worker import Worker

pytestmark = pytest.mark.apache_kafka
TEN = int(datetime.fromisoformat(at("10:00:00")).timestamp())


class Secured:
    def __init__(self, plaintext: str, secure: str, certs: Certificates) -> None:
        self.plaintext, self.secure, self.certs = plaintext, secure, certs

    def security(self, **overrides: str) -> dict[str, str]:
        """The PULSE_KAFKA_* variables of a client of the SASL_SSL listener."""
        return {
            "PULSE_KAFKA_BOOTSTRAP": self.secure,
            "PULSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "PULSE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "PULSE_KAFKA_SASL_USERNAME": USER,
            "PULSE_KAFKA_SASL_PASSWORD": PASSWORD,
            "PULSE_KAFKA_SSL_CAFILE": str(self.certs.ca),
        } | overrides


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    certs = Certificates.make(tmp_path_factory.mktemp("certs"))
    with secure_cluster(certs) as cluster:
        yield Secured(cluster.bootstrap, cluster.secure_bootstrap, certs)


def _settings(tag: str, **values: Any) -> Settings:
    return Settings(
        topic_prefix=f"sk-{tag}",
        input_topics=(f"sk-{tag}.events",),
        consumer_group=f"sk-{tag}-workers",
        metrics_port=0,
        session_timeout_ms=6000,
        watermark_delay_seconds=5.0,
        allowed_lateness_seconds=30.0,
        **values,
    )


def _events() -> tuple[list[bytes], dict[tuple[str, str], float]]:
    """Orders in the window 10:00-10:01 and one at 10:01:10 that closes it, with the revenue
    of that window by (business_unit, region), summed here by hand."""
    events = [
        order("a1", "10:00:05", "100.00"),  # retail/emea
        order("a2", "10:00:15", "20.50", region="amer"),  # retail/amer, EUR
        order("a3", "10:00:25", "50.00", bu="wholesale", currency="USD"),  # 50 x 0.92 = 46.00
        order("a4", "10:00:35", "0.25"),  # retail/emea
        order("a5", "10:00:45", "10.00", bu="wholesale", currency="GBP"),  # 10 x 1.17 = 11.70
        order("a1", "10:00:05", "100.00"),  # a resend of a1: counted once
        order("a6", "10:01:10", "1.00"),  # watermark 10:01:05 closes 10:00-10:01
    ]
    expected = {
        ("retail", "emea"): 100.25,
        ("retail", "amer"): 20.50,
        ("wholesale", "emea"): 46.00 + 11.70,
    }
    return events, expected


async def _topics(bootstrap: str) -> set[str]:
    admin = new_admin(bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def test_sasl_ssl_worker_counts_what_plaintext_counts(
    secured: Secured,
    start_worker: Callable[[Settings], Awaitable[Worker]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, aiokafka's too: no password in any record
    events, expected = _events()
    plain = _settings(uuid.uuid4().hex[:8], kafka_bootstrap=secured.plaintext)
    env = secured.security()
    secure = _settings(
        uuid.uuid4().hex[:8],
        kafka_bootstrap=secured.secure,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username=USER,
        kafka_sasl_password=PASSWORD,
        kafka_ssl_cafile=Path(env["PULSE_KAFKA_SSL_CAFILE"]),
    )
    secure_kafka = connection(secure, secured.secure)
    assert secure_kafka.protocol == "SASL_SSL"
    # Each input topic is made and filled through its own listener: the producer and the admin
    # client work over SASL_SSL too.
    for settings, kafka in ((plain, secured.plaintext), (secure, secure_kafka)):
        await ensure_topics(kafka, [TopicSpec(settings.input_topics[0], 1)])
        await produce(kafka, settings.input_topics[0], events)

    workers = [await start_worker(plain), await start_worker(secure)]

    async def both_closed() -> bool:
        shown = [revenue_of(await scrape(w.server.url)) for w in workers]
        return all(s == expected for s in shown)

    await eventually(both_closed, within=60, what="the same revenue on both listeners")
    # the secure worker's own topics were made over SASL_SSL: they are on the broker
    assert secure.kpi_topic in await _topics(secured.plaintext)
    assert PASSWORD not in caplog.text


def _run_worker(env: dict[str, str], within: float = 60) -> tuple[int, str, float]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "worker"],
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=within,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


@pytest.mark.parametrize(
    ("case", "overrides", "named"),
    [
        (
            "wrong password",
            {"PULSE_KAFKA_SASL_PASSWORD": "not-" + PASSWORD},
            "PULSE_KAFKA_SASL_PASSWORD",
        ),
        ("wrong user", {"PULSE_KAFKA_SASL_USERNAME": "nobody"}, "PULSE_KAFKA_SASL_USERNAME"),
        ("untrusted CA", {"PULSE_KAFKA_SSL_CAFILE": "other"}, "PULSE_KAFKA_SSL_CAFILE"),
        (
            "TLS listener taken for plaintext",
            {"PULSE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "PULSE_KAFKA_SSL_CAFILE": ""},
            "PULSE_KAFKA_SECURITY_PROTOCOL",
        ),
    ],
)
def test_bad_credentials_stop_the_worker_at_once_naming_the_setting(
    secured: Secured, case: str, overrides: dict[str, str], named: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    if overrides.get("PULSE_KAFKA_SSL_CAFILE") == "other":
        overrides["PULSE_KAFKA_SSL_CAFILE"] = str(secured.certs.other_ca)
    env = secured.security(**overrides) | {
        "PULSE_TOPIC_PREFIX": f"sk-{tag}",
        "PULSE_INPUT_TOPICS": f"sk-{tag}.events",
        "PULSE_CONSUMER_GROUP": f"sk-{tag}-workers",
        "PULSE_METRICS_PORT": "0",
        "PULSE_LOG_LEVEL": "DEBUG",
    }
    env = {k: v for k, v in env.items() if v}
    code, output, took = _run_worker(env)
    assert code == 1, f"{case}: exit {code}\n{output}"
    assert named in output, output
    assert took < 30, f"{case}: took {took:.1f} s"  # no retrying
    assert "Traceback" not in output
    assert PASSWORD not in output  # neither the right one ...
    assert "not-" + PASSWORD not in output  # ... nor a wrong one
    created = {t for t in asyncio.run(_topics(secured.plaintext)) if t.startswith(f"sk-{tag}")}
    assert created == set()


async def test_the_merge_stage_connects_over_sasl_ssl(
    secured: Secured,
    start_worker: Callable[[Settings], Awaitable[Worker]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The Faust app of `pulse merge` (consumer, producer, table changelogs) and its admin
    client connect with the same TLS and SASL as the worker: the company-wide revenue of
    10:00-10:01 reaches `<prefix>.kpi`, as summed by hand."""
    events, expected = _events()
    env = secured.security()
    settings = _settings(
        uuid.uuid4().hex[:8],
        kafka_bootstrap=secured.secure,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username=USER,
        kafka_sasl_password=PASSWORD,
        kafka_ssl_cafile=Path(env["PULSE_KAFKA_SSL_CAFILE"]),
        merge_stage=True,
    )
    kafka = connection(settings, secured.secure)
    await ensure_topics(kafka, [TopicSpec(settings.input_topics[0], 1)])
    await produce(kafka, settings.input_topics[0], events)
    await start_worker(settings)
    stage = MergeStage(settings, kafka)
    stop = asyncio.Event()
    task = asyncio.create_task(stage.run(stop))
    try:
        await asyncio.wait_for(stage.ready.wait(), 90)

        def revenue(records: list[Any]) -> dict[tuple[str, str], float]:
            found = {}
            for record in records:
                body = orjson.loads(record.value)
                if body["kpi"] == "revenue" and body["window"] == "1m" and body["value"]:
                    dims = body["dimensions"]
                    if body["window_start"] == TEN:
                        found[(dims["business_unit"], dims["region"])] = float(body["value"])
            return found

        records = await read_until(
            secured.plaintext, settings.kpi_topic, lambda got: revenue(got) == expected, 90
        )
        assert revenue(records) == expected
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert PASSWORD not in caplog.text
