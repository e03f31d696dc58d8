"""Late flow events that restate a period: where an event whose 1-minute window is final counts.

A flow event (an `expense_posted`) whose 1m window is final is too late for its minute, hour and
day, but the period windows it feeds (`1mo`, and `fp` with a fiscal calendar: the `opex` of
budget variance) may still be restated (`streams.core.restatements`). Within the restatement
horizon of such a period (its end plus the allowed lateness plus `PULSE_RESTATEMENT_DAYS`, judged
at the later of the watermark and the event's own `occurred_at`, as `check_period` judges a
budget) the event counts in that period's bucket only, and the finalizer publishes the period
again as a new revision; an event that feeds no period window, or none still within its horizon,
is dead-lettered `late` with a reason that says which (docs/kpi-semantics.md, "Restatements").

Since such an event counts after its minute is final, the ids of events that feed a period
window are remembered until that period's horizon has passed (`KeptUntil`): a resend of an
on-time expense arriving days later is then a `duplicate`, not a second count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from streams.core.compiler import PERIOD_WINDOWS, CompiledCatalog, Contribution
from streams.core.restatements import beyond_horizon, horizon_passed
from streams.errors import InvalidEvent

if TYPE_CHECKING:
    from streams.core.partition_state import Windows

PeriodFlows = Mapping[str, tuple[tuple[Contribution, tuple[str, ...]], ...]]
"""Event type → its additive contributions kept in period windows, with those windows."""


def period_flows(catalog: CompiledCatalog) -> PeriodFlows:
    """The event types whose sums or counts are kept in a period window (`PERIOD_WINDOWS`)."""
    found: dict[str, list[tuple[Contribution, tuple[str, ...]]]] = {}
    for event_type, contributions in catalog.by_event.items():
        for c in contributions:
            periods = tuple(w for w in c.windows if w in PERIOD_WINDOWS)
            if c.additive and periods:
                found.setdefault(event_type, []).append((c, periods))
    return {t: tuple(cs) for t, cs in found.items()}


@dataclass(frozen=True, slots=True)
class Target:
    """One period bucket a late flow counts in."""

    contribution: Contribution
    window: str
    start: int
    end: int


def period_label(windows: Windows, window: str, start: int) -> str:
    """A period as a `budget_set.period` names it: `2026-10` (a month, business time zone) or
    `FY2026-P03` (a fiscal period)."""
    if window == "fp":
        return windows.fiscal["fp"].calendar.period_of(start).label
    return datetime.fromtimestamp(start, windows.month.tz).strftime("%Y-%m")


def late_targets(
    flows: PeriodFlows,
    windows: Windows,
    event: Any,
    occurred: float,
    *,
    lateness: float,
    watermark: float,
    too_late: str,
) -> list[Target]:
    """The period buckets a late event (`occurred` in a final 1m window) still counts in.

    Raises `InvalidEvent("late")` when there is none: `too_late` (why its minute is final)
    followed by "... it feeds none" or by the period closed beyond the horizon, named.
    The state is not touched.
    """
    contributions = flows.get(event.type, ())
    judged = max(watermark, occurred)  # judged by its own time too, as `check_period`
    targets: list[Target] = []
    beyond: dict[int, str] = {}
    for c, names in contributions:
        if c.keep is not None and not c.keep(event):
            continue
        for name in names:
            kind = windows.kind(name)
            start = kind.start_of(occurred)
            end = kind.end_of(start)
            if horizon_passed(end, lateness, windows.restatement, judged):
                beyond[end] = period_label(windows, name, start)
            else:
                targets.append(Target(c, name, start, end))
    if targets:
        return targets
    if not beyond:
        raise InvalidEvent(
            "late",
            f"{too_late}; a late {event.type} counts only in a period window it feeds "
            "(a restatement), and it feeds none",
        )
    end = max(beyond)
    raise InvalidEvent(
        "late",
        f"{too_late}; " + beyond_horizon(beyond[end], end, windows.restatement, judged),
    )


class KeptUntil:
    """The dedupe bucket (a minute start) of an event kept in the period windows `names`: its
    id is remembered until the last of those periods can no longer be restated. Per event of
    such a type on the hot path, so the span where the answer holds is cached (events mostly
    arrive in order)."""

    def __init__(self, windows: Windows, names: tuple[str, ...], lateness: float) -> None:
        self.kinds = [windows.kind(name) for name in names]
        self.after = lateness + windows.restatement
        self._lo, self._hi, self._bucket = math.inf, -math.inf, 0

    def __call__(self, occurred: float) -> int:
        if self._lo <= occurred < self._hi:
            return self._bucket
        spans = [
            (start, kind.end_of(start))
            for kind in self.kinds
            for start in [kind.start_of(occurred)]
        ]
        self._lo = max(start for start, _ in spans)
        self._hi = min(end for _, end in spans)
        self._bucket = int((max(end for _, end in spans) + self.after) // 60) * 60
        return self._bucket
