"""Per-partition partials: the additive parts of one window instance from one source partition.

A worker knows only the partitions it owns. For each window instance it publishes (provisional
when the window closes, again when it is final), it also publishes each owned partition's own
measure accumulators of that instance: sums and counts, `Latest` budget registers, quantile
sketch bins, and for a business day's end the cumulative and trailing sums behind balances and
trailing ratios. The merge stage merges every source partition's parts (`merge_acc`) and computes
the KPI values with the same functions the worker uses (`kpi_values`), so a company-wide value is
the value one process owning every partition would compute: exact for money and counts, within
the sketch's accuracy for quantiles (bins are rebuilt from their keys).

A window instance holds the parts of every KPI computed from it (revenue feeds revenue, margins
and average order value), so a partial is one record per window instance and source partition,
not per KPI series. A later partial of the same instance and source replaces the earlier one
(`Partial.key`), so republishing after a crash or rebalance never adds twice.

Alongside, each worker states its progress per owned partition (`Progress`): the event time
below which its windows are closed. The merge stage emits a window once every source partition's
progress has passed it; a partition with no partial for that window had nothing in it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from streams.core.compiler import DERIVED_FROM_PERIODS, PERIOD_WINDOWS, CompiledCatalog
from streams.core.kpi_values import (
    KpiValue,
    day_sums,
    day_values,
    flow_values,
    period_values,
    span_accs,
    window_accs,
)
from streams.core.measures import Acc, Key, MeasureStore, decode_acc, encode_acc, merge_acc
from streams.core.windows import NO_WATERMARK
from streams.errors import ChangelogError

DAY_END = "day-end"
"""The instance of balances, cumulative and trailing KPIs as of the end of one business day."""
PARTIAL_VERSION = 1

Source = tuple[str, int]
"""(input topic, partition)."""


@dataclass(frozen=True, slots=True)
class WindowInstance:
    """One window instance a worker publishes: `window` is `1m`/`5m`/`1h`/`1d`/`1mo`, a fiscal
    window (`fp`/`fq`/`fytd`), or `DAY_END` (then `trailing_start` is the first day of its
    trailing span; for `fytd`, the start of the fiscal year it sums from). Epoch seconds."""

    window: str
    start: int
    end: int
    trailing_start: int | None = None

    @property
    def key(self) -> str:
        return f"{self.window}|{self.start}"


@dataclass(frozen=True, slots=True)
class Partial:
    """One source partition's parts of one window instance."""

    instance: WindowInstance
    source: Source
    final: bool
    accs: dict[Key, Acc]
    """The window's accumulators; for `DAY_END`, every `1d` sum up to that day (and `base`)."""
    trailing: dict[Key, Acc] = field(default_factory=dict)
    """`DAY_END` only: the `1d` sums over the trailing span."""

    @property
    def key(self) -> bytes:
        """Compaction key: the instance and the source partition (a republish replaces)."""
        topic, partition = self.source
        return f"{self.instance.key}|{topic}|{partition}".encode()

    @property
    def empty(self) -> bool:
        return not self.accs and not self.trailing


@dataclass(frozen=True, slots=True)
class Progress:
    """A source partition's windows ending at or before `watermark` (epoch seconds) are
    closed, and final once `watermark` passes their end plus the allowed lateness."""

    source: Source
    watermark: float

    @property
    def key(self) -> bytes:
        topic, partition = self.source
        return f"progress|{topic}|{partition}".encode()


def source_name(source: Source) -> str:
    topic, partition = source
    return f"{topic}[{partition}]"


def partial_of(
    store: MeasureStore, instance: WindowInstance, source: Source, *, final: bool
) -> Partial:
    """What one partition's `store` holds of `instance` (read before expiry drops it)."""
    if instance.window == DAY_END:
        assert instance.trailing_start is not None
        return Partial(
            instance,
            source,
            final,
            day_sums([store], until=instance.start),
            day_sums([store], until=instance.start, since=instance.trailing_start),
        )
    if instance.window in DERIVED_FROM_PERIODS:
        since = instance.start if instance.trailing_start is None else instance.trailing_start
        return Partial(instance, source, final, span_accs([store], since, instance.end))
    accs = window_accs([store], instance.window, instance.start, instance.end)
    return Partial(instance, source, final, accs)


def merged_values(catalog: CompiledCatalog, partials: Iterable[Partial]) -> list[KpiValue]:
    """The KPI values of one window instance from the partials of every source partition (a
    partition with none had nothing in it). All partials must be of the same instance."""
    partials = list(partials)
    if not partials:
        return []
    instance = partials[0].instance
    if any(p.instance != instance for p in partials):
        raise ChangelogError(f"partials of different windows merged as {instance.key}")
    accs = _merge(p.accs for p in partials)
    if instance.window == DAY_END:
        assert instance.trailing_start is not None
        trailing = _merge(p.trailing for p in partials)
        return day_values(
            catalog,
            instance.start,
            instance.end,
            accs,
            trailing,
            trailing_start=instance.trailing_start,
        )
    if instance.window in PERIOD_WINDOWS:
        return period_values(catalog, instance.window, instance.start, instance.end, accs)
    return flow_values(catalog, instance.window, instance.start, instance.end, accs)


def _merge(parts: Iterable[Mapping[Key, Acc]]) -> dict[Key, Acc]:
    merged: dict[Key, Acc] = {}
    for accs in parts:
        for key, acc in accs.items():
            merged[key] = merge_acc(merged.get(key), acc)
    return merged


# --- records --------------------------------------------------------------------------------


def encode_partial(partial: Partial) -> bytes:
    instance = partial.instance
    topic, partition = partial.source
    return orjson.dumps(
        {
            "v": PARTIAL_VERSION,
            "kind": "partial",
            "window": instance.window,
            "start": instance.start,
            "end": instance.end,
            "trailing_start": instance.trailing_start,
            "topic": topic,
            "partition": partition,
            "final": partial.final,
            "accs": _encode_accs(partial.accs),
            "trailing": _encode_accs(partial.trailing),
        }
    )


def encode_progress(progress: Progress) -> bytes:
    topic, partition = progress.source
    return orjson.dumps(
        {
            "v": PARTIAL_VERSION,
            "kind": "progress",
            "topic": topic,
            "partition": partition,
            "watermark": progress.watermark,
        }
    )


def decode_record(data: bytes) -> Partial | Progress:
    """A record of the partials topic. Raises `ChangelogError` (fatal) for one that cannot be
    read: the workers wrote it, so it is a bug or a version the merge stage does not know."""
    try:
        body = orjson.loads(data)
        version = body["v"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ChangelogError(f"unreadable partials record ({exc!r}): {data[:200]!r}") from exc
    if version != PARTIAL_VERSION:
        raise ChangelogError(
            f"partials record of version {version!r}, expected {PARTIAL_VERSION}: {data[:200]!r}"
        )
    try:
        source = (str(body["topic"]), int(body["partition"]))
        if body["kind"] == "progress":
            return Progress(source, float(body["watermark"]))
        trailing_start = body["trailing_start"]
        instance = WindowInstance(
            str(body["window"]),
            int(body["start"]),
            int(body["end"]),
            None if trailing_start is None else int(trailing_start),
        )
        return Partial(
            instance,
            source,
            bool(body["final"]),
            _decode_accs(body["accs"]),
            _decode_accs(body["trailing"]),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ChangelogError(f"unreadable partials record ({exc!r}): {data[:200]!r}") from exc


def _encode_accs(accs: Mapping[Key, Acc]) -> list[Any]:
    return [[name, list(dims), encode_acc(acc)] for (name, dims), acc in sorted(accs.items())]


def _decode_accs(cells: list[Any]) -> dict[Key, Acc]:
    return {(str(name), tuple(dims)): decode_acc(acc) for name, dims, acc in cells}


# --- when the merge stage emits a window ------------------------------------------------------

Verdict = Literal["provisional", "final"]


def verdict(
    end: float,
    progress: Mapping[str, float],
    expected: Iterable[str],
    lateness: float,
    *,
    provisional_sent: bool,
) -> Verdict | None:
    """What the merge stage publishes of a window ending at `end` (epoch seconds), given each
    source partition's stated progress: `final` once the slowest expected source is past `end`
    plus `lateness` (every source then sent its final parts, if it had any); `provisional` once
    it is past `end` (once); else nothing. A source that never stated progress holds every
    window back (it may hold the oldest events of all)."""
    mark = min((progress.get(name, NO_WATERMARK) for name in expected), default=NO_WATERMARK)
    if end + lateness <= mark:
        return "final"
    if end <= mark and not provisional_sent:
        return "provisional"
    return None
