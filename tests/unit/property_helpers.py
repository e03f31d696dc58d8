"""Random event streams, and runs of the core over them, for `test_properties.py`.

A stream covers two business days in Europe/Berlin (the second one possibly a DST change day) as
a few bursts of events, so that 1-minute windows and 30-second arrival groups hold several
events. Times are whole epoch seconds; `occurred_at` is written with the Berlin offset. There
are no `fx_rate` events (their effect depends on arrival order by design): the static rates
below do every conversion.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import orjson
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from hypothesis import strategies as st

from schemas import Envelope
from streams.core import (
    BadEventGuard,
    Finalizer,
    FxTable,
    PartitionState,
    StateConfig,
    ValidationLimits,
    Windows,
    WorkerState,
    compile_catalog,
    decode_event,
)
from streams.core.kpi_values import Labels
from streams.core.log_records import RECORD_BYTES, Groups
from streams.core.sketch import QuantileSketch
from streams.errors import InvalidEvent
from streams.kafka.changelog import ChangelogWriter
from streams.kafka.kpi_topic import KpiPublisher
from streams.worker.batch import BatchStep

BERLIN = ZoneInfo("Europe/Berlin")
WINDOWS = Windows.for_timezone(BERLIN)
CATALOG = compile_catalog()
DELAY = 5.0
LATENESS = 60.0
GROUP_SECONDS = 30
"""Arrival is shuffled only within 30-second groups: an event then arrives less than 30 s of
event time after a newer one, and its 1-minute window still accepts it (the window closes for
good DELAY + LATENESS = 65 s after its end, at least 65 s after the event)."""
STATIC_RATES = {"USD": Decimal("0.9137"), "GBP": Decimal("1.1713")}
"""EUR per unit; not round, so that the cent rounding of each amount matters."""
LIMITS = ValidationLimits()
NOW = 2_000_000_000.0  # 2033: every generated event is in the past
SKETCH_ACCURACY = 0.01
"""DDSketch's relative accuracy (`streams.core.sketch`): the bound quantiles are compared with."""
QUANTILE_KPIS = frozenset(k.name for k in CATALOG.kpis.values() if k.kind == "quantile")

DAY_STARTS = tuple(
    int(datetime(*ymd, tzinfo=BERLIN).timestamp())
    for ymd in ((2024, 3, 1), (2024, 3, 30), (2024, 10, 26))
)
"""First business day of a stream: an ordinary one, and the days before the spring (23 h) and
autumn (25 h) DST changes."""
MAX_BURSTS = 6
MAX_BURST_EVENTS = 10
BURST_SECONDS = 150

KINDS = (
    "order_placed",
    "shipment_delivered",
    "order_cancelled",
    "refund_issued",
    "inventory_issued",
    "inventory_received",
    "expense_posted",
    "feedback_submitted",
    "invoice_issued",
    "payment_received",
    "bill_received",
    "bill_paid",
    "investment_made",
    "benefit_realized",
)
OPENS = {"order_placed": "order", "invoice_issued": "invoice", "bill_received": "bill"}
"""Event types that open an id (`<what>_id`) which later events refer to."""
REFERS = {
    "order_cancelled": "order",
    "refund_issued": "order",
    "shipment_delivered": "order",
    "payment_received": "invoice",
    "bill_paid": "bill",
}
REVENUE_SIGN = {"order_placed": 1, "order_cancelled": -1, "refund_issued": -1}

RowKey = tuple[str, str, int, int, Labels]
"""(kpi, window, window_start, window_end, labels)."""
Values = dict[RowKey, Decimal | None]
"""None: a ratio with a zero denominator, emitted for its parts only."""
Rejection = tuple[str, str]
"""(event_id, reason)."""


# --- what the streams are made of -------------------------------------------------------------


class Spec(NamedTuple):
    """One generated event before ids are given out. Defaults make hand-written examples short."""

    kind: str
    second: int = 0
    """Seconds into its burst."""
    cents: int = 100
    currency: str = "EUR"
    unit: str = "retail"
    region: str = "eu"
    pick: int = 1
    """Chooses the referenced order/invoice/bill, the cost center, category, initiative..."""
    score: int = 5
    promised: int = 0
    """Promised delivery, relative to a delivery's own time."""
    delivery: int | None = None
    """Seconds from an `order_placed` to its own `shipment_delivered`, if it has one."""
    shipments: int = 1
    """How many `shipment_delivered` (a split shipment) arrive together at that time."""
    ends_batch: bool = False
    crash_after: bool = False


@dataclass(frozen=True)
class Sent:
    """One event as sent: its bytes, event time and partition key (order_id for order and
    shipment events, so the cycle-time join stays within a partition; else event_id)."""

    event_id: str
    at: int
    key: str
    raw: bytes
    kind: str
    revenue: Decimal
    """Its contribution to revenue in EUR, converted here by hand (0 for other kinds)."""
    ends_batch: bool = False
    """For runs in batches: the worker checkpoints after this event."""
    crash_after: bool = False
    """For runs with crashes: the worker dies right after this event (and its checkpoint)."""

    def __repr__(self) -> str:  # the JSON is what a falsifying example needs to show
        marks = (" ends batch" if self.ends_batch else "") + (" crash" if self.crash_after else "")
        return f"{self.raw.decode()}{marks}"


@dataclass(frozen=True)
class Stream:
    day: int
    events: tuple[Sent, ...]
    """In event-time order."""

    def groups(self, phase: int = 0) -> list[list[Sent]]:
        """Consecutive events of the same `GROUP_SECONDS` slot; slots start `phase` seconds
        after a whole minute, so that with a phase they straddle window boundaries."""
        out: list[list[Sent]] = []
        slot = None
        for sent in self.events:
            here = (sent.at - self.day - phase) // GROUP_SECONDS
            if here != slot:
                out.append([])
                slot = here
            out[-1].append(sent)
        return out


@dataclass(frozen=True)
class Arrival:
    sent: Sent
    copy: bool = False
    """A resend of an event that arrived before (same bytes)."""


@dataclass(frozen=True)
class Scenario:
    """A stream and the order its events (and resends) arrive in."""

    stream: Stream
    arrival: tuple[Arrival, ...]

    def __repr__(self) -> str:
        lines = [f"    {'resent ' if a.copy else ''}{a.sent!r}" for a in self.arrival]
        return "Scenario(arriving:\n" + "\n".join(lines) + ")"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # how Hypothesis prints it
        printer.text(repr(self))


# --- strategies -------------------------------------------------------------------------------

specs = st.builds(
    Spec,
    # Orders three times as often as any other type: the cycle-time join needs many pairs.
    kind=st.sampled_from(KINDS[:1] * 2 + KINDS),
    second=st.integers(0, BURST_SECONDS - 1),
    cents=st.integers(1, 500_000),
    currency=st.sampled_from(("EUR", "USD", "GBP")),
    unit=st.sampled_from(("retail", "wholesale")),
    region=st.sampled_from(("eu", "us")),
    pick=st.integers(0, 1000),
    score=st.integers(0, 10),
    promised=st.integers(-6 * 3600, 6 * 3600),
    # Often within seconds, so within the order's 30-second group (a shuffle may then bring
    # the delivery first), else hours later.
    delivery=st.none() | st.integers(0, 10) | st.integers(0, 10) | st.integers(11, 12 * 3600),
    shipments=st.integers(1, 2),
    # Batch ends and crashes travel with the events, not with arrival positions, so that
    # deleting an event while shrinking a failure leaves the others where they were.
    ends_batch=st.booleans(),
    crash_after=st.booleans(),
)


@st.composite
def event_streams(draw: st.DrawFn) -> Stream:
    """1 to `MAX_BURSTS` bursts of 1 to `MAX_BURST_EVENTS` events, plus the deliveries of some
    orders. A list of lists rather than one list of a drawn size: Hypothesis then makes about
    15 events on average and can still delete single events while shrinking a failure."""
    day = draw(st.sampled_from(DAY_STARTS))
    span = WINDOWS.day.shift(day, 2) - day - BURST_SECONDS
    bursts = draw(
        st.lists(
            st.tuples(st.integers(0, span), st.lists(specs, min_size=1, max_size=MAX_BURST_EVENTS)),
            min_size=1,
            max_size=MAX_BURSTS,
        )
    )
    return build_stream(day, bursts)


@st.composite
def scenarios(draw: st.DrawFn, *, shuffle: bool = True, copies: int = 0) -> Scenario:
    """A stream arriving with each `GROUP_SECONDS` group in a random order (`shuffle`), plus up
    to `copies` resends of random events, each placed after its original within the original's
    group (so it is a duplicate, never a late event)."""
    stream = draw(event_streams())
    phase = draw(st.integers(0, GROUP_SECONDS - 1))
    groups = [
        [Arrival(s) for s in (draw(st.permutations(g)) if shuffle else g)]
        for g in stream.groups(phase)
    ]
    picks = st.tuples(st.integers(0, 10**6), st.integers(0, 10**6))
    for pick, place in draw(st.lists(picks, max_size=copies)):
        group = groups[pick % len(groups)]
        originals = [n for n, a in enumerate(group) if not a.copy]
        original = originals[pick // len(groups) % len(originals)]
        # Anywhere after the original in its group, possibly after other copies.
        at = original + 1 + place % (len(group) - original)
        group.insert(at, Arrival(group[original].sent, copy=True))
    return Scenario(stream, tuple(a for group in groups for a in group))


def build_stream(day: int, bursts: Sequence[tuple[int, Sequence[Spec]]]) -> Stream:
    """Events from their specs, in event-time order, with ids `e000`, `e001`... in that order."""
    timed: list[tuple[int, int, Spec, str | None]] = []
    flat = [(offset + spec.second, spec) for offset, burst in bursts for spec in burst]
    for n, (offset, spec) in enumerate(flat):
        timed.append((day + offset, n, spec, None))
        if spec.kind == "order_placed" and spec.delivery is not None:
            for _ in range(spec.shipments):
                timed.append((day + offset + spec.delivery, n, spec, f"order-{n}"))
    timed.sort(key=lambda t: (t[0], t[1], t[3] is not None))
    started: dict[str, list[str]] = {"order": [], "invoice": [], "bill": []}
    events: list[Sent] = []
    for number, (at, n, spec, delivers) in enumerate(timed):
        event_id = f"e{number:03d}"
        if delivers is None:
            kind, amount, fields, dims = _event(event_id, f"order-{n}", spec, started)
        else:
            kind, amount, fields = "shipment_delivered", None, {"order_id": delivers}
            dims = {"business_unit": spec.unit, "region": spec.region}
        payload: dict[str, Any] = {
            "type": kind,
            "event_id": event_id,
            "occurred_at": datetime.fromtimestamp(at, BERLIN).isoformat(),
            "source": "prop",
            "schema_version": 1,
            "dimensions": dims,
            **fields,
        }
        revenue = Decimal(0)
        if amount is not None:
            payload |= {"amount": amount, "currency": spec.currency}
            if kind in REVENUE_SIGN:
                revenue = REVENUE_SIGN[kind] * to_eur(Decimal(amount), spec.currency)
        if kind == "shipment_delivered":
            payload["shipment_id"] = f"ship-{event_id}"
            promised = datetime.fromtimestamp(at + spec.promised, BERLIN)
            payload["promised_delivery_at"] = promised.isoformat()
        key = payload.get("order_id", event_id)
        raw = orjson.dumps(payload)
        events.append(
            Sent(event_id, at, key, raw, kind, revenue, spec.ends_batch, spec.crash_after)
        )
    return Stream(day, tuple(events))


def _event(
    event_id: str, order_id: str, spec: Spec, started: dict[str, list[str]]
) -> tuple[str, str | None, dict[str, Any], dict[str, str]]:
    """(kind, amount, typed fields, dimensions) of one spec."""
    kind, pick = spec.kind, spec.pick
    amount: str | None = f"{spec.cents // 100}.{spec.cents % 100:02d}"
    dims = {"business_unit": spec.unit, "region": spec.region}
    fields: dict[str, Any] = {}

    def refer(what: str) -> str:
        """An earlier id of `what`, or, one time in seven, an id nobody opened (dangling)."""
        earlier = started[what]
        if not earlier or pick % 7 == 0:
            return f"{what}-x{event_id}"
        return earlier[pick % len(earlier)]

    if kind in OPENS:
        what = OPENS[kind]
        fields[f"{what}_id"] = order_id if what == "order" else f"{what}-{event_id}"
        started[what].append(fields[f"{what}_id"])
    elif kind in REFERS:
        fields[f"{REFERS[kind]}_id"] = refer(REFERS[kind])
    elif kind in {"inventory_issued", "inventory_received"}:
        fields |= {"sku": f"sku-{pick % 3}", "quantity": "1"}
    elif kind == "expense_posted":
        dims["cost_center"] = f"cc-{pick % 2}"
        fields["category"] = ("travel", "software")[pick // 2 % 2]
    elif kind in {"investment_made", "benefit_realized"}:
        dims["initiative_id"] = f"init-{pick % 2}"
    if kind in {"feedback_submitted", "shipment_delivered"}:
        amount = None
    if kind == "feedback_submitted":
        if pick % 3 != 1:
            fields["csat_score"] = spec.score % 5 + 1
        if pick % 3 != 0:
            fields["nps_score"] = spec.score
    return kind, amount, fields, dims


def to_eur(amount: Decimal, currency: str) -> Decimal:
    """The contract's conversion, written out independently of `FxTable`."""
    rate = Decimal(1) if currency == "EUR" else STATIC_RATES[currency]
    return (amount * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def partition_of(key: str, partitions: int, salt: int) -> int:
    """A stable assignment (crc32, not `hash`, which is salted per process)."""
    return zlib.crc32(f"{salt}:{key}".encode()) % partitions


# --- running the core -------------------------------------------------------------------------


def new_worker() -> WorkerState:
    """A worker's state container: its partitions share the catalog, windows and FX table."""
    return WorkerState(
        StateConfig(
            catalog=CATALOG,
            windows=WINDOWS,
            watermark_delay=DELAY,
            allowed_lateness=LATENESS,
            dedupe_max_entries=10_000,
            retained_windows=3,
            fx=FxTable("EUR", STATIC_RATES),
        )
    )


def decode(raw: bytes) -> Envelope:
    return decode_event(raw, LIMITS, NOW)


def feed(part: PartitionState, raws: Iterable[bytes]) -> list[Rejection]:
    """Apply each event as the worker does; return the rejected ones in arrival order."""
    rejected: list[Rejection] = []
    for raw in raws:
        event = decode(raw)
        try:
            part.apply(event)
        except InvalidEvent as error:
            rejected.append((event.event_id, error.reason))
    return rejected


def final_values(parts: Sequence[PartitionState]) -> Values:
    """Every KPI value of the partitions' data as `pulse backtest` reports it at the end of its
    input: one `Finalizer` over all stores, watermark +inf."""
    first = min((p.first_event_time for p in parts), default=math.inf)
    last = max((p.watermark.max_event_time for p in parts), default=-math.inf)
    finalizer = Finalizer(CATALOG, WINDOWS, LATENESS)
    values: Values = {}
    for v in finalizer.final_values([p.store for p in parts], math.inf, first, last):
        key = (v.kpi, v.window, v.start, v.end, v.labels)
        assert key not in values, f"{key} emitted twice"
        values[key] = v.value
    return values


def run_split(split: Sequence[Iterable[bytes]]) -> tuple[Values, list[Rejection]]:
    """Feed `split[i]` to partition i of one worker; the final values over all of them."""
    worker = new_worker()
    rejected: list[Rejection] = []
    for number, raws in enumerate(split):
        rejected += feed(worker.assign(("events", number)), raws)
    return final_values(list(worker.partitions.values())), rejected


def run_one(raws: Iterable[bytes]) -> tuple[Values, list[Rejection]]:
    return run_split([raws])


def recover(log: Sequence[bytes], *, replay: str, expire: bool) -> WorkerState:
    """What `Worker.recover` does with a partition's changelog (`streams.worker.recovery.rebuild`
    over `streams.kafka.changelog.replay`): a fresh partition, every record of the log restored
    in order, the parts of a split record only once all are read, then expired. `replay` may
    read records twice, which must be harmless since records hold absolute values: the changelog
    producer is not idempotent (a retried send can append a record again), and
    test_checkpoint.py replays a whole log twice."""
    records = list(log)
    if replay == "each record twice":
        records = [record for record in records for _ in range(2)]
    elif replay == "the log twice":
        records = records * 2
    worker = new_worker()
    part = worker.assign(SOURCE)
    groups = Groups()
    for payload in records:
        for record in groups.feed(orjson.loads(payload)):
            part.restore(record)
    groups.finish()
    if expire:
        part.expire(worker.watermark())
    return worker


SOURCE = ("events", 0)
TP = TopicPartition(*SOURCE)


def _records(arrival: Sequence[Sent], start: int, end: int) -> list[ConsumerRecord[bytes, bytes]]:
    return [
        ConsumerRecord(TP.topic, TP.partition, offset, 0, 0, None, arrival[offset].raw, None, 0,
                       len(arrival[offset].raw), ())
        for offset in range(start, end)
    ]  # fmt: skip


def run_worker(
    arrival: Sequence[Sent],
    *,
    crashes: bool,
    replay: str,
    expire: bool,
    snapshots: str = "never",
) -> tuple[PartitionState, dict[int, str]]:
    """One partition as the worker runs it, through the worker's own batch step
    (`streams.worker.batch.BatchStep`) and changelog writer: batches end after events marked
    `ends_batch` and at the end; each batch's changelog records go to the log (as bytes, as over
    the changelog topic) and, if `expire`, the batch step's close expires what can go. With
    `crashes`, the worker dies after each event marked `crash_after` (once per position): a
    fresh one recovers from the log and consumes again from the last record's `next_offset`, so
    the events of an unfinished batch are read twice. A crash right at the end of a batch whose
    changelog went as several parts loses its last part (the write was cut short): recovery must
    then skip the group and read the batch again.

    `snapshots`: "never"; "kept", every other changelog record is a snapshot and records are
    split at 150 bytes of entries (a few each); "cut", the log is also cut before each snapshot,
    as the worker does once the snapshot is acknowledged.

    Returns the final state and the rejections {offset: reason}, the last read of each."""
    record_bytes = 150 if snapshots != "never" else RECORD_BYTES
    every = 2 if snapshots != "never" else 0

    def start(worker: WorkerState) -> tuple[BatchStep, ChangelogWriter]:
        writer = ChangelogWriter("unused:0", "{}.changelog".format, every, record_bytes)
        step = BatchStep(
            worker,
            limits=LIMITS,
            guard=BadEventGuard(1.0, 10**9),
            changelog=writer,
            kpis=KpiPublisher(worker),
            watch=None,
        )
        return step, writer

    worker = new_worker()
    worker.assign(SOURCE)
    step, writer = start(worker)
    log: list[bytes] = []
    rejected: dict[int, str] = {}
    crashed: set[int] = set()
    offset = batch_start = 0
    while offset < len(arrival):
        sent = arrival[offset]
        offset += 1
        cut_at, last_write = None, []
        if sent.ends_batch or offset == len(arrival):
            out = step.read({TP: _records(arrival, batch_start, offset)}, NOW)
            for position in range(batch_start, offset):
                rejected.pop(position, None)
            for dead in out.dead:
                headers = dict(dead.headers)
                rejected[int(headers["pulse.offset"])] = headers["pulse.reason"].decode()
            if any(c.starts_snapshot for c in out.logged):
                cut_at = len(log)
            last_write = [c.payload for c in out.logged]
            log += last_write
            if expire:
                step.close(out, NOW, worker.watermark())
            batch_start = offset
        crash = crashes and sent.crash_after and offset not in crashed
        if crash and len(last_write) > 1:
            log.pop()  # the crash cut the batch's changelog write short: nothing acknowledged
            cut_at = None
        if snapshots == "cut" and cut_at is not None:
            del log[:cut_at]  # the snapshot is acknowledged: the log before it goes
        if crash:
            crashed.add(offset)
            worker = recover(log, replay=replay, expire=expire)
            step, writer = start(worker)
            writer.replayed(TP, len(log))
            offset = batch_start = worker.partitions[SOURCE].next_offset or 0
    return worker.partitions[SOURCE], rejected


# --- comparing results ------------------------------------------------------------------------


def differences(got: Values, want: Values) -> list[str]:
    """Rows missing on either side or with different values; quantiles may differ by the
    sketch's relative accuracy, everything else (money, counts, ratios) must be equal."""
    out = []
    for key in sorted(got.keys() | want.keys(), key=repr):
        if key not in got or key not in want:
            out.append(f"{key}: got {got.get(key, 'nothing')}, want {want.get(key, 'nothing')}")
            continue
        a, b = got[key], want[key]
        if a is None or b is None:
            if a != b:
                out.append(f"{key}: got {a}, want {b}")
        elif key[0] in QUANTILE_KPIS:
            if not math.isclose(a, b, rel_tol=SKETCH_ACCURACY):
                out.append(f"{key}: got {a}, want {b} (beyond {SKETCH_ACCURACY:.0%})")
        elif a != b:
            out.append(f"{key}: got {a}, want {b}")
    return out


def store_differences(got: PartitionState, want: PartitionState) -> list[str]:
    """Cells of two partitions' measure stores that differ (sketches by their bins): final
    values can hide a difference, as a sample counted twice may move no quantile."""

    def cells(part: PartitionState) -> dict[tuple[object, ...], object]:
        out: dict[tuple[object, ...], object] = {
            ("base", *k): v for k, v in part.store.base.items()
        }
        for bucket, accs in part.store.buckets.items():
            for key, acc in accs.items():
                plain = acc.to_json() if isinstance(acc, QuantileSketch) else acc
                out[(*bucket, *key)] = plain
        return out

    a, b = cells(got), cells(want)
    return [
        f"store {key}: got {a.get(key)}, want {b.get(key)}"
        for key in sorted(a.keys() | b.keys(), key=repr)
        if a.get(key) != b.get(key)
    ]


def ledger_mismatch(values: Values, stream: Stream) -> str | None:
    """Check daily revenue and order counts against the stream, summed by hand (so that the
    metamorphic comparisons cannot pass by both sides being empty or equally wrong)."""
    revenue: dict[int, Decimal] = {}
    orders: dict[int, int] = {}
    for sent in stream.events:
        day = WINDOWS.day.start_of(sent.at)
        if sent.kind in REVENUE_SIGN:
            revenue[day] = revenue.get(day, Decimal(0)) + sent.revenue
        if sent.kind == "order_placed":
            orders[day] = orders.get(day, 0) + 1
    got_revenue: dict[int, Decimal] = {}
    got_orders: dict[int, int] = {}
    for (kpi, window, start, _, _), value in values.items():
        if value is None:
            continue
        if window == "1d" and kpi == "revenue":
            got_revenue[start] = got_revenue.get(start, Decimal(0)) + value
        elif window == "1d" and kpi == "orders":
            got_orders[start] = got_orders.get(start, 0) + int(value)
    if (got_revenue, got_orders) != (revenue, orders):
        return f"1d revenue {got_revenue} orders {got_orders}; by hand {revenue} {orders}"
    return None
