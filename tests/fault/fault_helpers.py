"""Fault-test helpers: `pulse worker` subprocesses, a paced producer that outlives broker
failures, the KPI topic's final records, and the KPI rows the produced messages must give.

The expected rows never come from `streams`: flow KPIs and budget variance are
`tests/reference/expected.py` over the produced lines (publish order), running balances and ROI a
plain linear loop over the same counted events (`running_rows`; `expected.running_rows` restates
it but scans every event once per day, and its 30-day part asserts ledger-only invariants).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from expected import (
    Counted,
    Rows,
    balance_bounds,
    budget_rows,
    business_day,
    day_bounds,
    flow_rows,
    process,
    ratio,
    rfc3339,
)
from ledger import SETTINGS_ENV
from prometheus_client.parser import text_string_to_metric_families

from streams.broker import free_port
from streams.kafka import new_consumer, new_producer, topic_partitions
from streams.simulator import SimulatedMessage

Key = tuple[str, str, str, str, str]
"""(kpi, window, window_start, window_end, dimensions) as `pulse backtest` prints them."""
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

LATENESS_S = 86_400
"""Allowed lateness of the fault runs. Event time only rises along a partition as published, but
a producer retry during a broker outage may land a batch after later ones: a day of lateness
keeps such a batch (minutes of event time here) from ever being `late`, so partitioning and
retries cannot change which events count."""
DELAY_S = float(SETTINGS_ENV["PULSE_WATERMARK_DELAY_SECONDS"])
PARTITIONS = 4
"""Input partitions of every fault test: two workers get two each."""

WORKER_ENV: dict[str, str] = {
    # expected.py reads the reference run's settings (zone Europe/Berlin, EUR, USD=0.90,
    # GBP=1.15): the workers run with the same ones.
    **SETTINGS_ENV,
    "PULSE_ALLOWED_LATENESS_SECONDS": str(LATENESS_S),
    "PULSE_SESSION_TIMEOUT_MS": "6000",  # the least the settings allow: a killed member's
    # partitions move ~6 s after its last heartbeat
    "PULSE_LOG_LEVEL": "INFO",
}

COMPARED_KPIS = frozenset(
    {
        "revenue",
        "cogs",
        "orders",
        "average_order_value",
        "gross_margin_ratio",
        "opex",
        "operating_margin_ratio",
        "csat_ratio",
        "nps",
        "on_time_delivery_ratio",
        "ar_balance",
        "ap_balance",
        "inventory_value",
        "working_capital",
        "roi_ratio",
        "budget_variance_ratio",
    }
)
"""Every KPI but the two that are not exact by contract or not independently computable here:
`order_cycle_time_seconds` (a DDSketch, within 1%) and the 30-day KPIs (`expected.py` asserts
that every trading series has all three balances from its first day, which holds for the
reference ledger, not for the simulator, whose AR starts with the first invoice)."""
ADDITIVE_GAUGES = ("revenue", "cogs", "orders", "opex")
"""/metrics families summed over partitions, compared per worker and partition set."""


# --- the stream -------------------------------------------------------------------------------


def without_fx_rates(messages: Iterable[SimulatedMessage]) -> list[SimulatedMessage]:
    """The simulator's messages less its `fx_rate` events and their redeliveries, so that the
    static rates apply everywhere and the order of partitions cannot change a conversion."""
    return [m for m in messages if b'"type":"fx_rate"' not in m.value]


def closers(partitions: int, at: datetime) -> list[SimulatedMessage]:
    """One counted event per input partition that feeds no KPI (an fx_rate at the static
    rate), message i for partition i, at `at`: it moves every partition's watermark past every
    window of the stream plus the lateness, so all of them become final."""
    rate = SETTINGS_ENV["PULSE_FX_RATES"].split(",")[0].split("=")[1]
    return [
        SimulatedMessage(
            f"closer-{p}".encode(),
            orjson.dumps(
                {
                    "event_id": f"closer-{p}",
                    "type": "fx_rate",
                    "occurred_at": at.isoformat(),
                    "source": "fault-test",
                    "schema_version": 1,
                    "currency": "USD",
                    "quote_currency": "EUR",
                    "rate": rate,
                }
            ),
            None,
            at.timestamp(),
        )
        for p in range(partitions)
    ]


def closing_time(messages: Sequence[SimulatedMessage]) -> datetime:
    """Far enough after the stream for its last business day and month to be final, and
    before now (a future event would be out of range)."""
    last = datetime.fromtimestamp(max(m.occurred_at for m in messages if m.bad_kind is None), UTC)
    first_of_next_month = (last.replace(day=1) + timedelta(days=32)).replace(day=1)
    at = max(last + timedelta(days=2), first_of_next_month + timedelta(days=1))
    at = (at + timedelta(seconds=LATENESS_S)).replace(minute=0, second=0, microsecond=0)
    assert at.timestamp() < time.time() - 3600, "the stream must lie in the past"
    return at


# --- expected values --------------------------------------------------------------------------


@dataclass
class Truth:
    """What the produced messages must give: the events that count (in publish order) and the
    row of every compared KPI whose window is final once the closers are in."""

    counted: list[Counted]
    message_of_line: dict[int, int]
    """expected.py's 1-based line number -> index of the message in the produced list."""
    rows: dict[Key, Decimal]
    final_before: float
    """Windows ending at or before this (epoch s) are final at the closers' watermark."""

    def counted_on(
        self, partition: int, partition_of: Sequence[int], produced: int
    ) -> list[Counted]:
        """The counted events among the first `produced` messages that landed on `partition`
        (`partition_of[i]`: where message i landed)."""
        return [
            e
            for e in self.counted
            if (i := self.message_of_line[e.line]) < produced and partition_of[i] == partition
        ]


def truth(messages: Sequence[SimulatedMessage], closed_at: datetime) -> Truth:
    """`expected.py` over the produced messages (the stream, then the closers at `closed_at`),
    in publish order, checked against the simulator's own labels: every valid message counts,
    every redelivered one is rejected as a duplicate. The simulator's other bad kinds are
    rejected by construction and left out (some, such as an oversized message or a year-2999
    timestamp, are beyond what expected.py validates).

    Dedupe in the worker is per partition, expected.py's over the whole stream: the same here,
    because a duplicate carries its original's key and so lands on its partition. Nothing is
    late: event time never falls along the published order (duplicates aside, rejected first).
    """
    lines: list[bytes] = []
    message_of_line: dict[int, int] = {}
    duplicates: set[int] = set()
    for index, message in enumerate(messages):
        if message.bad_kind not in (None, "duplicate"):
            continue
        lines.append(message.value)
        message_of_line[len(lines)] = index
        if message.bad_kind == "duplicate":
            duplicates.add(len(lines))
    counted, rejected = process(lines)
    disagree = set(rejected.items()) ^ {(n, "duplicate") for n in duplicates}
    assert not disagree, f"expected.py and the simulator disagree on lines {sorted(disagree)[:5]}"
    final_before = closed_at.timestamp() - DELAY_S - LATENESS_S
    rows = Rows()
    flow_rows(rows, counted)
    running_rows(rows, counted)
    # budget_rows scans every event per (cost center, month): give it only those it reads.
    budget_rows(rows, [e for e in counted if e.kind in ("budget_set", "expense_posted")])
    wanted = {
        key: value
        for key, value in rows.items()
        if key[0] in COMPARED_KPIS and datetime.fromisoformat(key[3]).timestamp() <= final_before
    }
    return Truth(counted, message_of_line, wanted, final_before)


BALANCE_SIGNS = {
    "ar_balance": {"invoice_issued": 1, "payment_received": -1},
    "ap_balance": {"bill_received": 1, "bill_paid": -1},
    "inventory_value": {"inventory_received": 1, "inventory_issued": -1},
}


def running_rows(rows: Rows, events: list[Counted]) -> None:
    """Balances, working capital and ROI at the end of every business day from the first
    counted event's to the last one's (docs/kpi-semantics.md, as `expected.running_rows` reads
    it: a series has a row once it has an event at or before the day's end; sums take the events
    strictly before it), in one pass over the events in time order."""
    ordered = sorted(events, key=lambda e: e.at)
    running = _Running()
    index = 0
    day, last = business_day(ordered[0].at), business_day(ordered[-1].at)
    while day <= last:
        end = day_bounds(day)[1]
        while index < len(ordered) and ordered[index].at < end:
            running.add(ordered[index])
            index += 1
        for event in islice(ordered, index, None):
            if event.at != end:
                break
            running.touch(event)  # exists at the day's end, sums nothing yet
        running.put_rows(rows, day)
        day += timedelta(days=1)


class _Running:
    def __init__(self) -> None:
        self.sums: dict[tuple[str, tuple[str, str]], Decimal] = defaultdict(Decimal)
        self.present: dict[str, set[tuple[str, str]]] = {kpi: set() for kpi in BALANCE_SIGNS}
        self.invested: dict[str, Decimal] = {}
        self.realized: dict[str, Decimal] = defaultdict(Decimal)

    def touch(self, event: Counted) -> None:
        for kpi, signs in BALANCE_SIGNS.items():
            if event.kind in signs:
                self.present[kpi].add(event.series)

    def add(self, event: Counted) -> None:
        self.touch(event)
        for kpi, signs in BALANCE_SIGNS.items():
            if event.kind in signs:
                self.sums[kpi, event.series] += signs[event.kind] * event.eur
        if event.kind == "investment_made":
            initiative = event.dims["initiative_id"]
            self.invested[initiative] = self.invested.get(initiative, Decimal(0)) + event.eur
        elif event.kind == "benefit_realized":
            self.realized[event.dims["initiative_id"]] += event.eur

    def put_rows(self, rows: Rows, day: date) -> None:
        bounds = balance_bounds(day)
        sums = self.sums
        for kpi, present in self.present.items():
            for series in present:
                rows.put(kpi, "balance", bounds, _dims(series), sums[kpi, series])
        for series in set().union(*self.present.values()):
            capital = (
                sums["ar_balance", series]
                + sums["inventory_value", series]
                - sums["ap_balance", series]
            )
            rows.put("working_capital", "balance", bounds, _dims(series), capital)
        for initiative, investment in self.invested.items():
            if investment != 0:
                value = ratio(self.realized[initiative] - investment, investment)
                rows.put("roi_ratio", "cumulative", bounds, {"initiative_id": initiative}, value)


def _dims(series: tuple[str, str]) -> dict[str, str]:
    return {"business_unit": series[0], "region": series[1]}


# --- the KPI topic ----------------------------------------------------------------------------


@dataclass
class KpiRecord:
    value: Decimal
    partitions: frozenset[str]


async def final_kpi_records(bootstrap: str, topic: str) -> dict[Key, list[KpiRecord]]:
    """Every `final` record of the KPI topic, per key, in the order written (a key always goes
    to one partition of the topic), as a `read_committed` consumer sees them: records of a
    killed worker's aborted transaction are not there to see."""
    consumer = new_consumer(
        bootstrap,
        group_id=None,
        isolation_level="read_committed",
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    found: dict[Key, list[KpiRecord]] = defaultdict(list)
    try:
        parts = [TopicPartition(topic, p) for p in range(await topic_partitions(bootstrap, topic))]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)  # the last stable offsets, read_committed
        pending = set(parts)
        deadline = time.monotonic() + 120
        while pending:
            assert time.monotonic() < deadline, f"KPI topic not read within 120 s: {pending}"
            batches = await consumer.getmany(*pending, timeout_ms=200, max_records=50_000)
            for records in batches.values():
                for record in records:
                    if b'"final":true' not in record.value:
                        continue
                    body = orjson.loads(record.value)
                    record_ = KpiRecord(Decimal(body["value"]), frozenset(body["partitions"]))
                    found[_record_key(body)].append(record_)
            for tp in list(pending):  # offsets have gaps: transaction markers take one each
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()
    return found


def _record_key(body: dict[str, Any]) -> Key:
    dims = ";".join(f"{k}={v}" for k, v in sorted(body["dimensions"].items()))
    start = datetime.fromtimestamp(body["window_start"], UTC)
    end = datetime.fromtimestamp(body["window_end"], UTC)
    return (body["kpi"], body["window"], rfc3339(start), rfc3339(end), dims)


def latest_complete(
    records: dict[Key, list[KpiRecord]], partitions: frozenset[str]
) -> tuple[dict[Key, Decimal], list[Key]]:
    """The newest final record of every compared key, and the keys whose newest record does not
    cover every input partition (a worker that owned only some of them wrote it last)."""
    latest: dict[Key, Decimal] = {}
    partial: list[Key] = []
    for key, history in records.items():
        if key[0] not in COMPARED_KPIS:
            continue
        newest = history[-1]
        latest[key] = newest.value
        if newest.partitions != partitions:
            partial.append(key)
    return latest, partial


async def assert_final_kpis(
    bootstrap: str, names: dict[str, str], want: Truth, partitions: int = PARTITIONS
) -> int:
    """The newest final record of every key on the KPI topic equals the truth, exactly, and was
    written by a worker that owned every input partition; returns how many rows matched."""
    every = frozenset(f"{names['input']}[{p}]" for p in range(partitions))
    deadline = time.monotonic() + 60
    while True:  # the last batches' records commit shortly after the worker caught up
        records = await final_kpi_records(bootstrap, f"{names['prefix']}.kpi")
        got, partial = latest_complete(records, every)
        if set(want.rows) <= set(got) or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    assert not partial, f"{len(partial)} keys last written by a partial owner: {partial[:3]}"
    assert_rows_equal(got, want.rows, "final KPI records")
    assert len(want.rows) > 10_000  # the comparison covered the stream, not a corner of it
    return len(want.rows)


def assert_rows_equal(got: dict[Key, Decimal], want: dict[Key, Decimal], what: str) -> None:
    """Exact equality of two row sets: same keys, equal Decimals (money to the cent, counts,
    ratios at the 10 places both sides round to)."""
    missing = sorted(set(want) - set(got))
    unexpected = sorted(set(got) - set(want))
    wrong = sorted((k, got[k], want[k]) for k in set(want) & set(got) if got[k] != want[k])
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing, e.g. {missing[:3]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected, e.g. {unexpected[:3]}")
    if wrong:
        problems.append(f"{len(wrong)} wrong (key, got, want), e.g. {wrong[:3]}")
    assert not problems, f"{what}: " + "; ".join(problems)


# --- /metrics ---------------------------------------------------------------------------------


def parse_metrics(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def owned_partitions(samples: Samples) -> set[int]:
    """The input partitions a worker owns, from its `pulse_consumer_lag_messages` series."""
    return {
        int(dict(labels)["partition"])
        for name, labels in samples
        if name == "pulse_consumer_lag_messages"
    }


def window_ends(samples: Samples) -> dict[str, float]:
    return {
        dict(labels)["window"]: value
        for (name, labels), value in samples.items()
        if name == "pulse_window_end_timestamp_seconds"
    }


ShownKey = tuple[str, str, str, str]
"""(kpi, window, window_end, dimensions): /metrics shows one instance per window kind."""
FLOW_WINDOWS = ("1m", "5m", "1h", "1d")


def shown_instances(watermark: float) -> dict[str, str]:
    """The end (RFC 3339) of the instance /metrics must show per flow window at `watermark`
    (docs: the newest instance closed on every owned partition; for 1d the business day before
    the watermark's), computed here from the definitions."""
    at = datetime.fromtimestamp(watermark, UTC)
    ends = {
        name: rfc3339(datetime.fromtimestamp(watermark // size * size, UTC))
        for name, size in (("1m", 60), ("5m", 300), ("1h", 3600))
    }
    ends["1d"] = rfc3339(day_bounds(business_day(at))[0])
    return ends


def additive_rows(events: list[Counted]) -> dict[Key, Decimal]:
    """Flow rows of the additive KPIs (what /metrics sums per worker) of `events`."""
    rows = Rows()
    flow_rows(rows, events)
    return {k: v for k, v in rows.items() if k[0] in ADDITIVE_GAUGES}


def compare_shown(samples: Samples, rows: dict[Key, Decimal]) -> tuple[int, list[str]]:
    """A worker's additive KPI gauges against `rows` (the flow rows of the events on the
    partitions it owns): (series compared, problems). A gauge of a series with no row must be 0
    (a quiet series); any other difference is a stale or duplicated partial sum, or a loss."""
    problems: list[str] = []
    watermark = samples[("pulse_watermark_timestamp_seconds", frozenset())]
    ends = shown_instances(watermark)
    for window, end in window_ends(samples).items():
        shown = rfc3339(datetime.fromtimestamp(end, UTC))
        if window in ends and shown != ends[window]:
            problems.append(f"{window} shows the instance ending {shown}, not {ends[window]}")
    got: dict[ShownKey, float] = {}
    for (name, labels), value in samples.items():
        kpi = name.removeprefix("pulse_")
        label_map = dict(labels)
        window = label_map.pop("window", "")
        if kpi in ADDITIVE_GAUGES and window in FLOW_WINDOWS:
            dims = ";".join(f"{k}={v}" for k, v in sorted(label_map.items()))
            got[(kpi, window, ends[window], dims)] = value
    want = {
        (kpi, window, end, dims): value
        for (kpi, window, _, end, dims), value in rows.items()
        if ends[window] == end
    }
    for key in sorted(set(got) | set(want)):
        value = want.get(key)
        if (value is None and got[key] != 0.0) or (
            value is not None and got.get(key) != float(value)
        ):
            problems.append(f"{key}: /metrics {got.get(key)}, expected {value}")
    return len(want), problems


# --- workers as processes ---------------------------------------------------------------------

RECOVERY = re.compile(r"assigned \[(.*)\]; replayed (\d+) changelog records in ([0-9.]+)s")


@dataclass
class Recovery:
    lifetime: int
    partitions: list[str]
    records: int
    seconds: float


@dataclass
class WorkerProcess:
    """One `pulse worker` (`python -m streams.cli worker`), restartable; every lifetime logs to
    the same file, after a `=== start N ===` line."""

    name: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    lifetimes: int = 0
    started_at: float = 0.0
    exits: list[int] = field(default_factory=list)

    def start(self) -> None:
        assert not self.alive(), f"{self.name} is already running"
        self.port = free_port()
        self.lifetimes += 1
        with self.log_path.open("ab") as log:
            log.write(f"=== start {self.lifetimes} ===\n".encode())
            log.flush()
            env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
            env |= self.env | {"PULSE_METRICS_PORT": str(self.port)}
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.started_at = time.monotonic()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to this worker (ours, by pid) and wait for it to exit."""
        assert self.process is not None
        self.process.send_signal(sig)
        self.exits.append(self.process.wait(60))

    def stop(self) -> int:
        """SIGTERM, as an operator scales down; the exit code."""
        self.kill(signal.SIGTERM)
        return self.exits[-1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def get(self, path: str) -> tuple[int, str] | None:
        """(status, body) of an endpoint, or None while nothing listens."""
        try:
            timeout = aiohttp.ClientTimeout(total=5)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(self.url + path) as response,
            ):
                return response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError, OSError):
            return None

    async def readyz(self) -> dict[str, Any] | None:
        answer = await self.get("/readyz")
        if answer is None:
            return None
        body: dict[str, Any] = orjson.loads(answer[1])
        return body

    async def scrape(self) -> Samples:
        answer = await self.get("/metrics")
        assert answer is not None, f"{self.name}: /metrics does not answer"
        assert answer[0] == 200, f"{self.name}: /metrics {answer}"
        return parse_metrics(answer[1])

    async def wait_ready(self, within: float = 90.0) -> float:
        """Seconds from this lifetime's start until /readyz answers 200 with no lag."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            assert self.alive(), f"{self.name} exited:\n{self.log_tail()}"
            ready = await self.readyz()
            if ready and ready["status"] == "ok" and ready["lag_messages"] == 0:
                return time.monotonic() - self.started_at
            await asyncio.sleep(0.2)
        raise AssertionError(f"{self.name} not ready within {within} s:\n{self.log_tail()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def current_log(self) -> str:
        return self.log().rsplit(f"=== start {self.lifetimes} ===", 1)[-1]

    def recoveries(self) -> list[Recovery]:
        """Every assignment of every lifetime, in order (a lifetime can have several: a new
        member first shares the partitions with a killed one the group has not expelled yet)."""
        found: list[Recovery] = []
        for lifetime, text in enumerate(self.log().split("=== start ")[1:], start=1):
            for parts, records, seconds in RECOVERY.findall(text):
                owned = [p.strip("' ") for p in parts.split(",") if p]
                found.append(Recovery(lifetime, owned, int(records), float(seconds)))
        return found

    def problems(self) -> list[str]:
        """Errors kpi-pulse logged in any lifetime (aiokafka's own ERROR lines, such as a
        coordinator not available yet on a fresh cluster, are its retries, not ours)."""
        return [line for line in self.log().splitlines() if WATCHED_ERROR.match(line)]

    async def wait_assigned(self, within: float = 60.0) -> float:
        """Seconds from this lifetime's start until it logs its assignment (state recovered)."""
        deadline = time.monotonic() + within
        while "assigned [" not in self.current_log():
            assert self.alive(), f"{self.name} exited:\n{self.log_tail()}"
            assert time.monotonic() < deadline, f"{self.name} not assigned within {within} s"
            await asyncio.sleep(0.05)
        return time.monotonic() - self.started_at


WATCHED_ERROR = re.compile(r"^\S+ \S+ (ERROR|CRITICAL) (streams|schemas|asyncio)[.:]")


# --- producing --------------------------------------------------------------------------------


class StreamProducer:
    """Publishes messages in order, keyed as given, each acknowledged (acks=all) before
    `send` returns; a send that fails (a broker down, a leader moving) is sent again, so a
    message may land twice, never zero times. `partitions[i]` is where message i landed."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.producer: AIOKafkaProducer = new_producer(
            bootstrap, linger_ms=5, request_timeout_ms=10_000, retry_backoff_ms=250
        )
        self.partitions: list[int] = []
        self.resent = 0

    async def __aenter__(self) -> StreamProducer:
        await self.producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()

    async def send(
        self,
        messages: Sequence[SimulatedMessage],
        rate: float | None = None,
        partition: int | None = None,
    ) -> None:
        """Send at `rate` messages per second (None: as fast as acknowledgements come)."""
        chunk = 2000 if rate is None else max(1, int(rate / 20))
        started = time.monotonic()
        for first in range(0, len(messages), chunk):
            if rate is not None:
                await asyncio.sleep(max(0.0, started + first / rate - time.monotonic()))
            self.partitions += await self._send_chunk(messages[first : first + chunk], partition)

    async def send_to_partitions(self, messages: Sequence[SimulatedMessage]) -> None:
        """Message i to partition i (the closers)."""
        for partition, message in enumerate(messages):
            await self.send([message], partition=partition)

    async def _send_chunk(
        self, chunk: Sequence[SimulatedMessage], partition: int | None
    ) -> list[int]:
        landed: list[int | None] = [None] * len(chunk)
        todo = list(range(len(chunk)))
        while todo:
            futures: list[tuple[int, asyncio.Future[Any]]] = []
            for index in todo:
                try:
                    future = await self.producer.send(
                        self.topic, chunk[index].value, key=chunk[index].key, partition=partition
                    )
                except KafkaError:
                    break  # no metadata (every broker down): wait, then send the rest again
                futures.append((index, future))
            for index, future in futures:
                with contextlib.suppress(KafkaError):
                    landed[index] = (await future).partition
            failed = [i for i in todo if landed[i] is None]
            if failed:
                self.resent += len([i for i, _ in futures if landed[i] is None])
                await asyncio.sleep(0.5)
            todo = failed
        return [p for p in landed if p is not None]
