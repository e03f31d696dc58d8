"""`pulse hostile`: throw hostile input (`streams.tools.hostile`) at a real worker and account
for it.

One run: produce the messages over the input partitions (routed as `streams.tools.hostile` says),
start `pulse worker` as a subprocess on them (its own process, so its RSS is its own), wait until
its counters account for every message, read its dead-letter topic, and print per kind and per
reason: produced, counted, dead-lettered, answered otherwise than owed (`wrong`), dead letters not
byte for byte their original (`altered`), and the messages nobody answered (`lost`: produced minus
counted minus dead-lettered, from the worker's own counters). Then the worker's RSS (peak and at the
end) and throughput, and whether `/healthz` and `/readyz` still answer 200.

"Counted" per kind is what was not dead-lettered; the worker's `pulse_events_processed_total`
must equal their sum. The run passes (exit 0) when nothing is lost, wrong or altered and the
worker is alive; else exit 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiokafka import TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from streams.kafka.clients import (
    TopicSpec,
    ensure_topics,
    new_consumer,
    new_producer,
    quiet_kafka_logs,
    start_client,
)
from streams.kafka.connection import KafkaTarget
from streams.kafka.embedded import free_port, kafka_bootstrap
from streams.settings import Settings
from streams.tools.hostile import Expect, HostileConfig, hostile_messages, partition_for

STALL_SECONDS = 90.0
"""No progress in the worker's counters for this long: the rest counts as lost."""
CHUNK = 2000


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@dataclass(frozen=True, slots=True)
class Sent:
    """What is kept of a produced message: its kind, owed answer and a digest of its bytes."""

    kind: str
    expect: Expect
    digest: bytes


@dataclass
class Report:
    produced: Counter[str] = field(default_factory=Counter)
    dead: Counter[tuple[str, str]] = field(default_factory=Counter)
    wrong: Counter[tuple[str, str]] = field(default_factory=Counter)
    altered: Counter[str] = field(default_factory=Counter)
    processed: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    internal_errors_logged: int = 0
    peak_rss_mb: float = 0.0
    end_rss_mb: float = 0.0
    seconds: float = 0.0
    """From the worker's start to its last answer."""
    busy_seconds: float = 0.0
    """From its first answer to its last (start-up and group join left out)."""
    healthy: bool = False
    ready: bool = False
    exit_code: int | None = None

    @property
    def lost(self) -> int:
        return self.produced.total() - self.processed - self.rejected.total()

    @property
    def ok(self) -> bool:
        counted = self.produced.total() - self.dead.total()
        return (
            self.lost == 0
            and counted == self.processed
            and not self.wrong
            and not self.altered
            and self.healthy
            and self.exit_code is None
        )


def _digest(key: bytes | None, value: bytes | None, headers: Iterable[tuple[str, bytes]]) -> bytes:
    h = hashlib.sha256()
    for part in (key, value):
        h.update(b"N" if part is None else b"B%d:" % len(part) + part)
    for name, data in headers:
        h.update(b"H%d:%s%d:" % (len(name.encode()), name.encode(), len(data)) + data)
    return h.digest()


async def _produce(
    bootstrap: KafkaTarget, topic: str, config: HostileConfig, partitions: int
) -> dict[tuple[int, int], Sent]:
    producer = new_producer(bootstrap, acks=1, linger_ms=20)
    await start_client(producer, bootstrap)
    sent: dict[tuple[int, int], Sent] = {}
    pending: list[tuple[asyncio.Future[object], Sent]] = []

    async def settle() -> None:
        for future, kept in pending:
            meta = await future
            sent[(meta.partition, meta.offset)] = kept  # type: ignore[attr-defined]
        pending.clear()

    try:
        for index, m in enumerate(hostile_messages(config)):
            partition = partition_for(m.key, partitions, index)
            future = await producer.send(
                topic, value=m.value, key=m.key, headers=list(m.headers), partition=partition
            )
            pending.append((future, Sent(m.kind, m.expect, _digest(m.key, m.value, m.headers))))
            if len(pending) >= CHUNK:
                await settle()
        await settle()
    finally:
        await producer.stop()
    return sent


async def _counters(url: str) -> tuple[int, Counter[str]]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        text = await response.text()
    processed, rejected = 0, Counter[str]()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "pulse_events_processed_total":
                processed += int(sample.value)
            elif sample.name == "pulse_events_rejected_total":
                rejected[sample.labels["reason"]] += int(sample.value)
    return processed, rejected


async def _status(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


def _rss_mb(pid: int, field_name: str) -> float:
    """`VmRSS` or `VmHWM` (peak) of a process, in MB; 0 when unknown (not Linux, exited)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


async def _read_dead_letters(
    bootstrap: KafkaTarget,
    topic: str,
    count: int,
    sent: dict[tuple[int, int], Sent],
    report: Report,
) -> None:
    consumer = new_consumer(bootstrap, group_id=None)
    await start_client(consumer, bootstrap)
    seen = 0
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        deadline = time.monotonic() + 120
        while seen < count and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                for record in records:
                    seen += 1
                    headers = list(record.headers or ())
                    ours = dict(h for h in headers if h[0].startswith("pulse."))
                    at = (int(ours["pulse.partition"]), int(ours["pulse.offset"]))
                    reason = ours["pulse.reason"].decode()
                    kept = sent[at]
                    original = headers[: len(headers) - len(ours)]
                    if _digest(record.key, record.value, original) != kept.digest:
                        report.altered[kept.kind] += 1
                    report.dead[(kept.kind, reason)] += 1
                    if not kept.expect.allows(reason):
                        report.wrong[(kept.kind, reason)] += 1
    finally:
        await consumer.stop()


def _worker_env(
    settings: Settings, bootstrap: KafkaTarget, topic: str, run_id: str, port: int
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PULSE_KAFKA_BOOTSTRAP": str(bootstrap),
            "PULSE_INPUT_TOPICS": topic,
            "PULSE_TOPIC_PREFIX": f"hostile-{run_id}",
            "PULSE_CONSUMER_GROUP": f"hostile-{run_id}",
            "PULSE_METRICS_HOST": "127.0.0.1",
            "PULSE_METRICS_PORT": str(port),
            "PULSE_MAX_EVENT_BYTES": str(settings.max_event_bytes),
        }
    )
    return env


async def _await_answers(
    worker: asyncio.subprocess.Process, base: str, produced: int, report: Report
) -> None:
    """Poll the worker's counters until every message is answered, it stops, or it stalls."""
    started = last_change = time.monotonic()
    first: float | None = None
    answered = 0
    while True:
        await asyncio.sleep(0.5)
        report.peak_rss_mb = max(report.peak_rss_mb, _rss_mb(worker.pid, "VmHWM"))
        if worker.returncode is not None:
            report.exit_code = worker.returncode
            return
        with contextlib.suppress(aiohttp.ClientError):
            report.processed, report.rejected = await _counters(base + "/metrics")
        now_answered = report.processed + report.rejected.total()
        if now_answered != answered:
            answered, last_change = now_answered, time.monotonic()
            first = first or last_change
            report.seconds = last_change - started
            report.busy_seconds = last_change - first
        if answered >= produced or time.monotonic() - last_change > STALL_SECONDS:
            return


async def run_hostile(
    settings: Settings,
    messages: int,
    partitions: int,
    *,
    seed: int = 17,
    hostile_ratio: float = 0.35,
    say: Callable[[str], None] = say,
) -> Report:
    """Run the attack (see the module's docstring) and print the accounting; returns it."""
    config = HostileConfig(
        messages, seed=seed, hostile_ratio=hostile_ratio, max_event_bytes=settings.max_event_bytes
    )
    quiet_kafka_logs()
    report = Report()
    with (
        kafka_bootstrap(settings) as bootstrap,
        tempfile.TemporaryDirectory() as tmp,
    ):
        run_id = uuid.uuid4().hex[:8]
        topic = f"hostile-{run_id}.events"
        await ensure_topics(bootstrap, [TopicSpec(topic, partitions)])
        started = time.perf_counter()
        sent = await _produce(bootstrap, topic, config, partitions)
        report.produced = Counter(s.kind for s in sent.values())
        hostile = report.produced.total() - report.produced["valid"]
        say(
            f"hostile: produced {len(sent):,} messages ({hostile:,} "
            f"hostile of {len(report.produced) - 1} kinds) to {partitions} partitions in "
            f"{time.perf_counter() - started:.1f} s; broker {bootstrap}"
        )
        port = free_port("127.0.0.1")
        base = f"http://127.0.0.1:{port}"
        log_path = Path(tmp) / "worker.log"
        with log_path.open("wb") as log_file:
            worker = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "streams.cli",
                "worker",
                env=_worker_env(settings, bootstrap, topic, run_id, port),
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
            try:
                await _await_answers(worker, base, len(sent), report)
                report.end_rss_mb = _rss_mb(worker.pid, "VmRSS")
                report.healthy = await _status(base + "/healthz")
                report.ready = await _status(base + "/readyz")
                await _read_dead_letters(
                    bootstrap, f"hostile-{run_id}.deadletter", report.rejected.total(), sent, report
                )
            finally:
                if worker.returncode is None:
                    worker.send_signal(signal.SIGTERM)
                    try:
                        await asyncio.wait_for(worker.wait(), 30)
                    except TimeoutError:
                        worker.kill()
                        await worker.wait()
        log_text = log_path.read_text(errors="replace")
        report.internal_errors_logged = log_text.count("internal error on ")
        if report.exit_code is not None:
            say("worker stopped; the end of its log:\n" + "\n".join(log_text.splitlines()[-30:]))
    _print(report, say)
    return report


def _print(report: Report, say: Callable[[str], None]) -> None:
    reasons = sorted({reason for _, reason in report.dead})
    head = f"{'kind':<24}{'produced':>9}{'counted':>9}{'dead':>8}  " + " ".join(
        f"{r[:12]:>12}" for r in reasons
    )
    say(head + f"{'wrong':>7}{'altered':>8}")
    say("-" * len(head + " " * 15))
    kinds = sorted(report.produced, key=lambda k: (k != "valid", k))
    for kind in kinds:
        dead = sum(n for (k, _), n in report.dead.items() if k == kind)
        wrong = sum(n for (k, _), n in report.wrong.items() if k == kind)
        cells = " ".join(f"{report.dead[(kind, r)] or '':>12}" for r in reasons)
        say(
            f"{kind:<24}{report.produced[kind]:>9,}{report.produced[kind] - dead:>9,}{dead:>8,}  "
            f"{cells}{wrong or '':>7}{report.altered[kind] or '':>8}"
        )
    total_dead = report.dead.total()
    cells = " ".join(
        f"{sum(n for (_, r), n in report.dead.items() if r == reason):>12,}" for reason in reasons
    )
    say(
        f"{'total':<24}{report.produced.total():>9,}{report.produced.total() - total_dead:>9,}"
        f"{total_dead:>8,}  {cells}{report.wrong.total():>7}{report.altered.total():>8}"
    )
    total = report.produced.total()
    rate = total / report.seconds if report.seconds else 0.0
    busy = total / report.busy_seconds if report.busy_seconds else 0.0
    say(
        f"worker counters: processed {report.processed:,} + rejected {report.rejected.total():,} "
        f"= {report.processed + report.rejected.total():,} of {report.produced.total():,} "
        f"produced; lost {report.lost:,}; dead letters read {total_dead:,}"
    )
    alive = "alive" if report.exit_code is None else f"exited {report.exit_code}"
    healthz = "200" if report.healthy else "failing"
    readyz = "200" if report.ready else "not ready"
    say(
        f"internal errors logged: {report.internal_errors_logged:,}; worker {alive}, /healthz "
        f"{healthz}, /readyz {readyz}"
    )
    say(
        f"worker RSS: peak {report.peak_rss_mb:.0f} MB, end {report.end_rss_mb:.0f} MB; "
        f"{rate:,.0f} messages/s from its start to the last answer ({report.seconds:.1f} s), "
        f"{busy:,.0f}/s from the first answer (polled every 0.5 s)"
    )
    say(f"hostile: {'PASS' if report.ok else 'FAIL'}")
