"""What the produced messages must give, computed without `streams`: the fault runs' settings,
the simulated streams, and the expected KPI rows.

Flow KPIs and budget variance are `tests/reference/expected.py` over the produced lines in
publish order; running balances and ROI a plain linear loop over the same counted events
(`running_rows`: `expected.running_rows` states the same, but scans every event once per day,
and its 30-day part asserts invariants that hold for the reference ledger only).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import islice

import orjson
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
)
from ledger import SETTINGS_ENV

from streams.tools.simulator import SimulatedMessage, SimulationConfig, simulate

Key = tuple[str, str, str, str, str]
"""(kpi, window, window_start, window_end, dimensions) as `pulse backtest` prints them."""

LATENESS_S = 86_400
"""Allowed lateness of the fault runs. Event time only rises along a partition as published, but
a producer retry during a broker outage may land a batch after later ones: a day of lateness
keeps such a batch (under an hour of event time here) from ever being `late`, so partitioning and
retries cannot change which events count."""
DELAY_S = float(SETTINGS_ENV["PULSE_WATERMARK_DELAY_SECONDS"])
SOURCE_IDLE_S = 300.0
"""PULSE_SOURCE_IDLE_SECONDS of the fault runs (the default)."""
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
    # A snapshot, and the changelog cut before it, every 8 records of a partition: the kills,
    # rebalances and broker failures land around snapshots and cuts too.
    "PULSE_CHANGELOG_SNAPSHOT_RECORDS": "8",
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


def watermark_of(events: Sequence[Counted]) -> float:
    """One partition's watermark after its counted `events` (in partition order), by the rule
    and not by `streams`: each source (`source`) lags by how far its newest event was behind
    the newest event time of all when the next event of another source arrived (still open for
    the newest event's source: how far it is behind the newest); after each event, the newest
    event time less the largest lag among the sources at most `SOURCE_IDLE_S` behind the
    newest, less the delay; the highest of these (it never falls). An event not newer than its
    source's newest, or more than `SOURCE_IDLE_S` behind the newest on arrival, moves nothing."""
    newest: dict[str, float] = {}
    lag: dict[str, float] = {}
    top = mark = float("-inf")
    last = ""
    for event in events:
        at = event.at.timestamp()
        source = event.body["source"]
        if at <= newest.get(source, float("-inf")) or at < top - SOURCE_IDLE_S:
            continue
        before, top = top, max(top, at)
        if last and last != source:
            lag[last] = top - newest[last]
        lag[source] = max(0.0, before - at)
        newest[source] = at
        last = source
        active = [s for s, t in newest.items() if t >= top - SOURCE_IDLE_S]
        mark = max(mark, top - max(lag[s] for s in active) - DELAY_S)
    return mark


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


STREAM = SimulationConfig(
    # Five hours across a business day's end (Europe/Berlin midnight is 23:00 UTC in March),
    # in the past (a future event is out of range): 111,929 messages once its fx_rate events
    # are left out, with the simulator's 2% of bad ones and redeliveries.
    start=datetime(2026, 3, 10, 20, 0, tzinfo=UTC),
    seed=20260310,
    rate=14.0,
    duration=5 * 3600.0,
)


@dataclass(frozen=True)
class Stream:
    """Messages to publish (keyed as the simulator keys them), then `closers` (closer i to
    input partition i), and what they must give."""

    messages: list[SimulatedMessage]
    closers: list[SimulatedMessage]
    truth: Truth


def make_stream(config: SimulationConfig) -> Stream:
    """The simulator's messages of `config` less its fx_rate events, closers after them, and
    the truth of both."""
    messages = without_fx_rates(simulate(config))
    closed_at = closing_time(messages)
    ends = closers(PARTITIONS, closed_at)
    return Stream(messages, ends, truth([*messages, *ends], closed_at))


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
