"""The alert lifecycle of one series: when detector scores open an alert, and when it ends.

    idle ──score ≥ open for `min_points` points──▶ open ──in band for `resolve_points`──▶ idle
      ▲                                                                                  │
      └─────────────────────── `cooldown_points` points in cooldown ◀────────────────────┘

- Warm-up: nothing opens until the detector says the series is learned (static thresholds apply
  from the first point: they need no learning).
- Hysteresis: an alert opens at `open_score` and resolves only once the score is back below
  `resolve_score` (and the value inside the band) for `resolve_points` consecutive points.
- Minimum duration: `min_points` consecutive anomalous points before opening (one stray point is
  noise, not an incident); consecutive means adjacent window instances: a series with gaps (a
  ratio whose sample is too small at night) restarts the count after a gap.
- Cooldown: after a resolve, the series stays quiet for `cooldown_points` points.
- Severity: `critical` from `critical_score` or a static critical bound, else `warning`; it can
  rise while open (never fall). One open alert per series at a time.
- New level accepted: when the detector accepts a change that has held as the new normal
  (`Score.accepted`), an open alert resolves at once with that reason, instead of staying open
  (and critical) for as long as the new level lasts.
- Held: while a source the series depends on is stale, nothing opens (the data is incomplete).
Pure: stdlib only.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from streams.core.catalog import Thresholds
from streams.errors import ContractViolation

Severity = Literal["warning", "critical"]
Phase = Literal["idle", "pending", "open", "cooldown"]


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    open_score: float = 0.5
    critical_score: float = 0.75
    resolve_score: float = 0.35
    min_points: int = 2
    resolve_points: int = 2
    cooldown_points: int = 3

    def __post_init__(self) -> None:
        if not 0 < self.resolve_score <= self.open_score <= self.critical_score <= 1:
            raise ContractViolation(
                "scores must satisfy 0 < resolve_score <= open_score <= critical_score <= 1"
            )
        for name in ("min_points", "resolve_points"):
            if getattr(self, name) < 1:
                raise ContractViolation(f"{name} must be >= 1")
        if self.cooldown_points < 0:
            raise ContractViolation("cooldown_points must be >= 0")


def static_severity(thresholds: Thresholds | None, value: Decimal) -> Severity | None:
    """The severity a catalog threshold gives `value`, if any bound is crossed."""
    if thresholds is None:
        return None
    t = thresholds
    if (t.critical_below is not None and value < t.critical_below) or (
        t.critical_above is not None and value > t.critical_above
    ):
        return "critical"
    if (t.warning_below is not None and value < t.warning_below) or (
        t.warning_above is not None and value > t.warning_above
    ):
        return "warning"
    return None


@dataclass(frozen=True, slots=True)
class Transition:
    state: Literal["opened", "resolved"]
    severity: Severity
    started_at: float
    """Start of the first anomalous point of this alert."""
    reason: Literal["back in band", "new level accepted", "no data", ""] = ""
    """Why a resolved alert resolved."""


@dataclass(slots=True)
class Lifecycle:
    policy: AlertPolicy
    phase: Phase = "idle"
    run: int = 0
    """Consecutive points counting towards the next change (anomalous, or back in band)."""
    started_at: float = 0.0
    severity: Severity = "warning"

    @property
    def active(self) -> bool:
        return self.phase == "open"

    def expire(self) -> Transition | None:
        """Resolve an open alert whose series has no values to judge any more (a ratio whose
        sample became too small, a series that stopped): nobody can tell it is still true."""
        if self.phase != "open":
            return None
        self.phase, self.run = "cooldown", 0
        return Transition("resolved", self.severity, self.started_at, "no data")

    def step(  # noqa: PLR0911 - one return per transition reads best
        self,
        start: float,
        score: float,
        *,
        ready: bool,
        static: Severity | None = None,
        held: bool = False,
        accepted: bool = False,
        contiguous: bool = True,
    ) -> Transition | None:
        """Feed one point (its window start, detector score, readiness, static severity,
        whether the detector accepted a new level at it, and whether it follows the previous
        point without a missing window instance: anomalous points counted towards opening must
        be consecutive instances, not two points a night of gaps apart)."""
        p = self.policy
        if self.phase == "pending" and not contiguous:
            self.phase, self.run = "idle", 0
        anomalous = static is not None or (ready and score >= p.open_score)
        severity: Severity = (
            "critical"
            if static == "critical" or (ready and score >= p.critical_score)
            else "warning"
        )
        if self.phase == "open":
            if accepted and static is None:
                self.phase, self.run = "cooldown", 0
                return Transition("resolved", self.severity, self.started_at, "new level accepted")
            if anomalous:
                self.run = 0
                if severity == "critical":
                    self.severity = "critical"
                return None
            calm = static is None and score < p.resolve_score
            self.run = self.run + 1 if calm else 0
            if self.run >= p.resolve_points:
                self.phase, self.run = "cooldown", 0
                return Transition("resolved", self.severity, self.started_at, "back in band")
            return None
        if self.phase == "cooldown":
            self.run += 1
            if self.run <= p.cooldown_points:
                return None
            self.phase, self.run = "idle", 0
        if not anomalous or held:
            self.phase, self.run = "idle", 0
            return None
        if self.phase == "idle":
            self.phase, self.run, self.started_at, self.severity = "pending", 0, start, severity
        self.run += 1
        if severity == "critical":
            self.severity = "critical"
        if self.run >= p.min_points:
            self.phase, self.run = "open", 0
            return Transition("opened", self.severity, self.started_at)
        return None
