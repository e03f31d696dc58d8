"""Detection on the company-wide series, its state kept in the merge stage's Faust table.

The merge stage feeds each window instance to one `AnomalyWatch` when it first publishes the
instance's company-wide values (`observe`), grouped by window end in ascending order, so the
same instances give the same alerts however the stage's input was batched or restarted. What it
keeps in the table is a snapshot and a log, as a database does:

- `i|<epoch>|<part>`: the input of each feed (its values, its wall-clock for the watch's
  horizon), in parts of at most `INPUT_ROWS` values;
- every `SNAPSHOT_INSTANCES` window instances, a snapshot of every series that changed since
  the last one (`streams.detection.state` records), in two slots per series, `s0|<series>` and
  `s1|<series>`, each `<epoch>|<record>` (an empty record: the series was forgotten). A series
  is written to the slot that does *not* hold its newest committed record, so that record
  survives a snapshot that never gets committed;
- `d`: the commit, written last in each feed: the epoch, the newest window end fed (`through`),
  the epoch of the last snapshot and what the series shared then (incidents, open alerts).

A Faust table's changelog is one Kafka partition here (`PARTIALS_PARTITIONS`), written in order,
so what a crash leaves durable is a prefix of the writes. `restore` loads the snapshot the last
durable commit names and replays the inputs logged after it, up to that commit, through the same
watch: the state of every series is then exactly what it was at that commit (the feed is
deterministic). Instances fed after it are fed again by the stage (it marks a window published
only after the commit) and give the same alerts again (sent twice at worst, with the same key).
Inputs older than the newest committed snapshot, and the slots of series forgotten before it,
are deleted after that commit.

Writing each series at every instance would cost ~4 KB per series per minute of changelog and
~140 µs per series of encoding (measured); a snapshot every `SNAPSHOT_INSTANCES` instances and a
log of inputs (~50 bytes per value) cost a fraction of that, and a restart replays at most that
many instances (~170 µs per series each).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from decimal import Decimal

import orjson

from schemas.kpi_record import decimal_text
from streams.core.compiler import CompiledCatalog
from streams.core.kpi_values import KpiValue
from streams.detection.state import restore, series_name, series_records, shared_record
from streams.detection.watch import IDLE_STEPS, AnomalyEvent, AnomalyWatch

log = logging.getLogger(__name__)

COMMIT = "d"
INPUT = "i|"
SLOTS = ("s0|", "s1|")
INPUT_ROWS = 2000
SNAPSHOT_INSTANCES = 30
"""Window instances fed between two snapshots (what a restart replays at most)."""


@dataclass
class _Slot:
    slot: int
    """Which slot holds the newest record written."""
    epoch: int
    record: bytes
    """The newest record written (empty: forgotten)."""


Group = tuple[int, list[KpiValue]]
"""The values of the window instances ending at one time."""


def _input_records(groups: list[Group], now: float) -> list[str]:
    """A feed as records of at most `INPUT_ROWS` values each (Kafka's default limit on a
    record is 1 MB; a day-end instance alone can hold tens of thousands of values)."""

    def row(v: KpiValue) -> list[object]:
        numbers = (v.value, v.numerator, v.denominator)
        texts = [None if n is None else decimal_text(n) for n in numbers]
        return [v.kpi, v.window, v.start, v.end, [list(pair) for pair in v.labels], *texts]

    rows = [row(v) for _, group in groups for v in group]
    chunks = [rows[i : i + INPUT_ROWS] for i in range(0, len(rows), INPUT_ROWS)]
    return [
        orjson.dumps({"now": now, "parts": len(chunks), "rows": chunk}).decode() for chunk in chunks
    ]


def _read_input(table: Mapping[str, str], epoch: int) -> tuple[list[Group], float]:
    """The feed of `epoch` as `_input_records` wrote it."""
    first = orjson.loads(table[f"{INPUT}{epoch}|0"])
    rows = list(first["rows"])
    for part in range(1, first["parts"]):
        rows += orjson.loads(table[f"{INPUT}{epoch}|{part}"])["rows"]

    def number(n: str | None) -> Decimal | None:
        return None if n is None else Decimal(n)

    groups: dict[int, list[KpiValue]] = {}
    for kpi, window, start, end, labels, *numbers in rows:
        pairs = tuple((a, b) for a, b in labels)
        value, numerator, denominator = map(number, numbers)
        groups.setdefault(end, []).append(
            KpiValue(kpi, window, start, end, pairs, value, numerator, denominator)
        )
    return sorted(groups.items()), float(first["now"])


@dataclass
class StageDetection:
    """The merge stage's watch and its records. `table`: the stage's Faust table (str -> str)."""

    catalog: CompiledCatalog
    max_series: int | None = None
    snapshot_instances: int = SNAPSHOT_INSTANCES
    watch: AnomalyWatch = field(init=False)
    epoch: int = 0
    """The newest feed committed (or about to be)."""
    through: float = float("-inf")
    """Newest window end fed to the watch (a replayed instance at or before it is not fed)."""
    seconds: float = 0.0
    """Time spent detecting and recording (the stage's `pulse_detector_seconds_total`)."""
    restored_series: int = 0
    replayed: int = 0
    """Feeds replayed from the log at the last restore."""
    _snapshot: int = 0
    """Epoch of the newest snapshot written."""
    _shared: str = ""
    """What the series shared at that snapshot."""
    _since: int = 0
    """Window instances fed since that snapshot."""
    _slots: dict[str, _Slot] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.watch = AnomalyWatch(self.catalog, max_series=self.max_series, idle_steps=IDLE_STEPS)
        self._shared = shared_record(self.watch).decode()

    def restore(self, table: MutableMapping[str, str]) -> None:
        """Take the state the last commit in `table` left (nothing committed: a fresh watch)."""
        started = time.perf_counter()
        commit = table.get(COMMIT)
        epoch, through, snapshot, shared = 0, float("-inf"), 0, None
        if commit is not None:
            head, _, shared_text = commit.partition("|")
            epoch_text, through_text, snapshot_text = head.split(",")
            epoch, through, snapshot = int(epoch_text), float(through_text), int(snapshot_text)
            shared = shared_text.encode()
        newest: dict[str, _Slot] = {}
        for key, value in table.items():
            if key[:3] not in SLOTS:
                continue
            written, _, record = value.partition("|")
            name, at = key[3:], int(written)
            if at <= snapshot and (name not in newest or at > newest[name].epoch):
                newest[name] = _Slot(SLOTS.index(key[:3]), at, record.encode())
        kept = [s.record for s in newest.values() if s.record]
        for problem in restore(self.watch, kept, shared):
            log.warning("detection state left out (its series warms up again): %s", problem)
        self._slots, self._snapshot, self._since = newest, snapshot, 0
        self._shared = shared_record(self.watch).decode()
        self.replayed = 0
        for replay in range(snapshot + 1, epoch + 1):
            groups, now = _read_input(table, replay)
            self._feed(groups, now)
            self.replayed += 1
        self.epoch, self.through = epoch, through
        self.restored_series = len(self.watch.series)
        self.seconds += time.perf_counter() - started
        log.info(
            "detection restored %d series (snapshot %d, %d feeds replayed to epoch %d) in %.2f s",
            self.restored_series,
            snapshot,
            self.replayed,
            epoch,
            time.perf_counter() - started,
        )

    def observe(
        self, values: Iterable[KpiValue], table: MutableMapping[str, str], now: float
    ) -> list[AnomalyEvent]:
        """Feed first-published company-wide values; record the feed; the alert transitions."""
        started = time.perf_counter()
        by_end: dict[int, list[KpiValue]] = {}
        for v in values:
            if v.end > self.through:
                by_end.setdefault(v.end, []).append(v)
        if not by_end:
            return []
        groups = sorted(by_end.items())
        events = self._feed(groups, now)
        epoch = self.epoch + 1
        for part, record in enumerate(_input_records(groups, now)):
            table[f"{INPUT}{epoch}|{part}"] = record
        snapshot = self._since >= self.snapshot_instances
        if snapshot:
            self._write_snapshot(table, epoch)
        self.through = float(groups[-1][0])
        table[COMMIT] = f"{epoch},{self.through!r},{self._snapshot}|{self._shared}"
        self.epoch = epoch
        if snapshot:
            self._collect(table)
        self.seconds += time.perf_counter() - started
        return events

    def _feed(self, groups: list[Group], now: float) -> list[AnomalyEvent]:
        events: list[AnomalyEvent] = []
        for end, group in groups:
            events += self.watch.observe_values(group, clock=float(end), now=now)
            self._since += len({(v.window, v.start) for v in group})
        return events

    def _write_snapshot(self, table: MutableMapping[str, str], epoch: int) -> None:
        """Every series changed since the last snapshot, to its other slot."""
        watch = self.watch
        records = {series_name(k): r for k, r in series_records(watch, watch.series).items()}
        gone = {n for n, s in self._slots.items() if s.record} - records.keys()
        records |= dict.fromkeys(gone, b"")
        for name, record in records.items():
            known = self._slots.get(name)
            if known is not None and known.record == record:
                continue
            slot = 0 if known is None else 1 - known.slot
            table[SLOTS[slot] + name] = f"{epoch}|{record.decode()}"
            self._slots[name] = _Slot(slot, epoch, record)
        self._snapshot, self._since = epoch, 0
        self._shared = shared_record(watch).decode()

    def _collect(self, table: MutableMapping[str, str]) -> None:
        """After a snapshot's commit: the inputs it covers, and forgotten series, are gone."""
        for key in [k for k in table if k.startswith(INPUT)]:
            if int(key[len(INPUT) :].partition("|")[0]) <= self._snapshot:
                del table[key]
        for name in [n for n, s in self._slots.items() if not s.record]:
            for prefix in SLOTS:
                table.pop(prefix + name, None)
            del self._slots[name]
