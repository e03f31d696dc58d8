"""The merge stage: every source partition's partials in, company-wide KPI values and their
anomaly alerts out.

One Faust agent reads `<prefix>.partials` (what `streams.kafka.kpi_topic.KpiPublisher` writes)
and keeps two Faust tables, changelogged and rebuilt on start:

- `state`: per window instance (`w|1m|<start>`, ...), the latest partial of each source
  partition (the record as sent, so a republished partial replaces the one before), the
  window's end, and whether its provisional value was published; beside them, the detection's
  snapshot, input log and commit (`streams.merge.detection`). One table, so one changelog
  partition written in order: a window is marked published only after the detection's commit
  of its values;
- `progress`: per source partition, the highest watermark its worker stated.

After each progress record, every held window that the slowest source partition has passed is
merged with the core's own formulas (`streams.core.partials.merged_values`) and published to
`<prefix>.kpi` in the workers' format (`kpi_record`): provisional once every source is past its
end, final once every source is past its end plus the allowed lateness; then it is forgotten.
A partial of a window already final (a republish after a rebalance) is dropped: its final
value is out. The first published values of each window (provisional, or final if that comes
first) go to the detection (`PULSE_DETECTION`), whose alert transitions go to
`<prefix>.anomalies`, as a single worker's would. The stage must run with the workers'
settings (catalog, time zone, lateness, detection).

Faust's agent machinery costs ~125 µs per record here (FIELD-NOTES); partials are per window
instance and source partition, so that is nothing: measured at 150-180 partials/s on a busy
2-core machine against the embedded broker (4 sources, 9 series, 45 values per window), bound
by broker round trips (each window's records and table writes acknowledged), a hundredfold
what a fleet's closed windows produce. Table writes happen inside the stream
iteration only (`take()` with writes outside it fails).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from faust.types import StreamT

from streams.core import NO_WATERMARK, KpiValue
from streams.core.compiler import PERIOD_WINDOWS, CompiledCatalog
from streams.core.partials import (
    Partial,
    Progress,
    decode_record,
    merged_values,
    source_name,
    verdict,
)
from streams.core.restatements import horizon_passed
from streams.errors import FatalError
from streams.export.http import MetricsServer
from streams.export.metrics import build_merge_registry
from streams.export.page import Page, PageSources
from streams.kafka.anomalies import anomaly_record, log_anomaly
from streams.kafka.clients import COMPACTED, TopicSpec, ensure_topics, topic_partitions
from streams.kafka.connection import KafkaTarget, preflight
from streams.kafka.kpi_topic import PARTIALS_PARTITIONS, kpi_record
from streams.merge.app import build_app
from streams.merge.detection import StageDetection
from streams.merge.restate import first_published, restated
from streams.settings import Settings
from streams.worker.config import state_config

log = logging.getLogger(__name__)

WINDOW = "w|"
"""Table keys of held window instances (the other keys are `streams.merge.detection`'s)."""
CHANGELOG_CONFIG = {"segment.ms": "600000", "min.cleanable.dirty.ratio": "0.1"}
"""The table's changelog is compacted (Faust's default); small segments let the broker compact
the detection records rewritten every window, so a restart reads little more than the state."""


class StageView:
    """The merge stage as the live page sees it (`streams.export.page.history.PageState`):
    company-wide values and watermark, and no events of its own (throughput and counts are the
    workers')."""

    def __init__(self, stage: MergeStage) -> None:
        self._stage = stage
        self.config = stage.config
        self.processed: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()

    @property
    def partitions(self) -> dict[str, object]:
        return dict.fromkeys(self._stage.expected, None)

    def latest_values(self) -> list[KpiValue]:
        return self._stage.latest_values()

    def watermark(self) -> float:
        return self._stage.watermark()

    def last_event_time(self) -> float:
        return NO_WATERMARK


class MergeStage:
    """`await run(stop)` until `stop` is set; raises what stopped the agent."""

    def __init__(self, settings: Settings, bootstrap: KafkaTarget) -> None:
        self.settings = settings
        self.bootstrap = bootstrap
        """Every client of the stage, Faust's included, connects with its TLS and SASL."""
        self.config = state_config(settings)
        self.catalog: CompiledCatalog = self.config.catalog
        self.lateness = settings.allowed_lateness_seconds
        self.restatement_s = settings.restatement_days * 86_400.0
        """A final month is kept this long for restatements (`streams.merge.restate`)."""
        self.restated = 0
        """Company-wide records published again for a restated month."""
        self.expected: list[str] = []
        """Every source partition of the input topics (read at start)."""
        self.records = 0
        """Records of the partials topic handled (partials and progress; replays included)."""
        self.partials = 0
        """Partials read."""
        self.published = 0
        """KPI records sent to `<prefix>.kpi`."""
        self.dropped = 0
        """Partials of windows already final (republished after a rebalance)."""
        self.failure: BaseException | None = None
        self._failed: asyncio.Event | None = None
        self.ready = asyncio.Event()
        """Set once partitions are assigned and the tables recovered (after each rebalance)."""
        self.rebalances = 0
        self._latest: dict[str, tuple[int, list[KpiValue]]] = {}
        """Per window name: the newest instance published (its end) and its values."""
        self.detection = (
            StageDetection(self.catalog, settings.max_watched_series)
            if settings.detection
            else None
        )
        self._restored = False
        """The detection state was read from the table since the last rebalance."""
        self._held: set[str] | None = None
        """Keys of the windows held in the table (None: read them from the table again, as after
        a rebalance), so a progress record does not scan the detection's records too."""
        self.started = time.monotonic()
        self.detecting_after: float | None = None
        """Seconds from start to detection restored (None: not yet)."""
        self.anomalies = 0
        """Alert transitions sent to `<prefix>.anomalies`."""
        view = StageView(self)
        self.server = MetricsServer(
            build_merge_registry(
                self,
                watch=None if self.detection is None else self.detection.watch,
                detector_cost=self._detector_seconds,
                bands=settings.export_bands,
            ),
            settings.metrics_host,
            settings.metrics_port,
            self.liveness,
            self.readiness,
            page=Page(PageSources(view, None if self.detection is None else self.detection.watch)),
        )
        self._datadir = tempfile.TemporaryDirectory(prefix=f"{settings.merge_app_id}-")
        self.app = build_app(settings, bootstrap, Path(self._datadir.name))
        self._faust(settings)

    def _faust(self, settings: Settings) -> None:
        """The Faust app's tables, topics, agent and rebalance hook."""
        app = self.app
        self.table = app.Table(
            "state",
            partitions=PARTIALS_PARTITIONS,
            help="Partials per window instance and detection state.",
            extra_topic_configs=CHANGELOG_CONFIG,
        )
        self.progress = app.Table(
            "progress", partitions=PARTIALS_PARTITIONS, help="Watermark per source partition."
        )
        self.partials_topic = app.topic(
            settings.partials_topic, key_serializer="raw", value_serializer="raw"
        )
        self.kpi_topic = app.topic(settings.kpi_topic, key_serializer="raw", value_serializer="raw")
        self.anomalies_topic = app.topic(
            settings.anomalies_topic, key_serializer="raw", value_serializer="raw"
        )

        async def merge(stream: StreamT[bytes]) -> None:
            try:
                async for value in stream:
                    await self.handle(value)
            except Exception as exc:
                # Faust logs a crashed agent and keeps the app running: stop the stage instead
                # of serving nothing while looking alive.
                self._fail(exc)
                raise

        app.agent(self.partials_topic, name="merge")(merge)

        def rebalanced(*args: Any, **kwargs: Any) -> None:  # (sender, signal=...)
            self.rebalances += 1
            self._restored = False  # the table may hold what another instance wrote
            self._held = None
            self.ready.set()

        app.on_rebalance_complete.connect(rebalanced)

    def _detector_seconds(self) -> float:
        return 0.0 if self.detection is None else self.detection.seconds

    def liveness(self) -> tuple[bool, dict[str, object]]:
        failure = None if self.failure is None else repr(self.failure)
        return self.failure is None, {"failure": failure}

    def readiness(self) -> tuple[bool, dict[str, object]]:
        ready = self.ready.is_set() and self.failure is None
        return ready, {"tables_recovered": self.ready.is_set(), "sources": len(self.expected)}

    def latest_values(self) -> list[KpiValue]:
        """The company-wide values of each window kind's newest published instance (what
        /metrics shows; empty after a restart until the next window is published)."""
        return [v for _, values in sorted(self._latest.items()) for v in values[1]]

    def watermark(self) -> float:
        """The slowest source partition's stated progress (epoch seconds)."""
        stated = {name: float(mark) for name, mark in self.progress.items()}
        return min((stated.get(n, NO_WATERMARK) for n in self.expected), default=NO_WATERMARK)

    def windows_held(self) -> int:
        return len(self._held_keys())

    def _held_keys(self) -> set[str]:
        if self._held is None:
            self._held = {key for key in self.table if key.startswith(WINDOW)}
        return self._held

    def _windows(self) -> list[tuple[str, dict[str, Any]]]:
        table = self.table
        return [(key, entry) for key in self._held_keys() if (entry := table.get(key)) is not None]

    def _forget(self, key: str) -> None:
        del self.table[key]
        self._held_keys().discard(key)

    async def _watch_app(self) -> None:
        """A Faust service that crashes (its consumer, producer or table recovery) stops the
        stage too: the app object stays up otherwise, consuming nothing."""
        await self.app.wait_until_stopped()  # returns once it crashes, or stops on its own
        reason = self.app.crash_reason if self.app.crashed else None
        self._fail(reason or FatalError("the Faust app stopped by itself"))

    def _fail(self, exc: BaseException) -> None:
        if self.failure is not None:
            return
        log.error("merge agent failed: %r", exc, exc_info=exc)
        self.failure = exc
        if self._failed is not None:
            self._failed.set()

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.settings
        await preflight(self.bootstrap)  # credentials, CA and protocol, each named if wrong
        await ensure_topics(
            self.bootstrap,
            [
                TopicSpec(settings.partials_topic, PARTIALS_PARTITIONS, config=dict(COMPACTED)),
                TopicSpec(settings.kpi_topic, 3, config=dict(COMPACTED)),
            ],
        )
        counts = {t: await topic_partitions(self.bootstrap, t) for t in settings.input_topics}
        self.expected = sorted(
            source_name((topic, partition)) for topic, n in counts.items() for partition in range(n)
        )
        self._failed = asyncio.Event()
        await self.server.start()
        log.info("merge stage serving %s", self.server.url)
        try:
            await self.app.start()
            log.info("merge stage started over %d source partitions", len(self.expected))
            waits = [
                asyncio.create_task(stop.wait()),
                asyncio.create_task(self._failed.wait()),
                asyncio.create_task(self._watch_app()),
            ]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
        finally:
            await self.app.stop()
            await self.server.stop()
            self._datadir.cleanup()
        if self.failure is not None:
            raise FatalError(f"the merge agent stopped: {self.failure!r}") from self.failure

    async def handle(self, value: bytes) -> None:
        """One record of the partials topic (inside the agent's stream iteration)."""
        self.records += 1
        if self.detection is not None and not self._restored:
            self.detection.restore(self.table)
            self._restored = True
            if self.detecting_after is None:
                self.detecting_after = time.monotonic() - self.started
                log.info(
                    "detecting on %d restored series %.2f s after start",
                    self.detection.restored_series,
                    self.detecting_after,
                )
        record = decode_record(value)
        self.partials += isinstance(record, Partial)
        if isinstance(record, Progress):
            name = source_name(record.source)
            stated = self.progress.get(name)
            if stated is None or record.watermark > stated:  # a restarted worker may lag
                self.progress[name] = record.watermark
            await self._publish_due()
            return
        self._keep(record, value)

    def _keep(self, partial: Partial, value: bytes) -> None:
        instance = partial.instance
        key = WINDOW + instance.key
        entry: dict[str, Any] | None = self.table.get(key)
        if entry is None:
            if self._verdict(instance.end, sent=True) == "final":
                self.dropped += 1
                return
            entry = {"end": instance.end, "sent": False, "parts": {}}
        parts = {**entry["parts"], source_name(partial.source): value.decode()}
        # A final month whose part changed is merged again (and stays due until it is, even if
        # the same partial is read again meanwhile).
        restate = entry.get("restate", False) or ("published" in entry and parts != entry["parts"])
        self.table[key] = {**entry, "parts": parts, "restate": restate}
        self._held_keys().add(key)

    def _verdict(self, end: float, *, sent: bool) -> str | None:
        progress = {name: float(mark) for name, mark in self.progress.items()}
        return verdict(end, progress, self.expected, self.lateness, provisional_sent=sent)

    async def _publish_due(self) -> None:
        held = sorted(self._windows(), key=lambda item: (item[1]["end"], item[0]))
        due: list[tuple[str, dict[str, Any], str, list[KpiValue]]] = []
        first: list[KpiValue] = []
        now = time.time()
        sends: list[Awaitable[Any]] = []
        for key, entry in held:
            if "published" in entry:  # a final month kept for its restatements
                sends += await self._restate(key, entry, now)
                continue
            verdict_ = self._verdict(entry["end"], sent=entry["sent"])
            if verdict_ is None:
                continue
            values = self._merged(entry)
            for kpi in values:
                record_key, body = kpi_record(
                    kpi, final=verdict_ == "final", partitions=self.expected, now=now
                )
                # force: sent now, not attached to the partial's offset (Faust would publish it
                # only when that offset is committed); awaited below, so a failed send stops
                # the agent before the offset of the record that caused it is committed.
                sends.append(await self.kpi_topic.send(key=record_key, value=body, force=True))
            self.published += len(values)
            self._show(values)
            due.append((key, entry, verdict_, values))
            if not entry["sent"]:
                first += values
        if self.detection is not None and first:
            for event in self.detection.observe(first, self.table, now):
                log_anomaly(event)
                record_key, body = anomaly_record(event, now)
                sends.append(
                    await self.anomalies_topic.send(key=record_key, value=body, force=True)
                )
                self.anomalies += 1
        await asyncio.gather(*sends)
        # Windows are marked published after the detection's commit (one changelog, in order):
        # a crash before this line feeds them again, one after it finds them fed.
        for key, entry, verdict_, values in due:
            if verdict_ != "final":
                self.table[key] = {**entry, "sent": True}
            elif key.split("|")[1] in PERIOD_WINDOWS and self.restatement_s > 0:
                published = first_published(values)
                self.table[key] = {**entry, "sent": True, "published": published}
            else:
                self._forget(key)

    def _merged(self, entry: dict[str, Any]) -> list[KpiValue]:
        partials = [decode_record(text.encode()) for text in entry["parts"].values()]
        return merged_values(self.catalog, [p for p in partials if isinstance(p, Partial)])

    async def _restate(self, key: str, entry: dict[str, Any], now: float) -> list[Awaitable[Any]]:
        """A final month kept for restatements: forgotten once its horizon has passed; merged
        and published again, changed series only, when a source's part of it changed."""
        if horizon_passed(entry["end"], self.lateness, self.restatement_s, self.watermark()):
            self._forget(key)
            return []
        if not entry.get("restate"):
            return []
        changed, published = restated(self._merged(entry), entry["published"])
        sends = []
        for kpi in changed:
            record_key, body = kpi_record(kpi, final=True, partitions=self.expected, now=now)
            sends.append(await self.kpi_topic.send(key=record_key, value=body, force=True))
        self.published += len(changed)
        self.restated += len(changed)
        self.table[key] = {**entry, "restate": False, "published": published}
        return sends

    def _show(self, values: list[KpiValue]) -> None:
        """Keep the newest instance of each window name for /metrics."""
        by_window: dict[str, list[KpiValue]] = {}
        for value in values:
            by_window.setdefault(value.window, []).append(value)
        for window, shown in by_window.items():
            end = shown[0].end
            if end >= self._latest.get(window, (end, []))[0]:
                self._latest[window] = (end, shown)
