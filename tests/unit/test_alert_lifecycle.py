"""The alert lifecycle: warm-up, minimum duration, hysteresis, cooldown, severity, holding."""

from __future__ import annotations

from decimal import Decimal

import pytest

from streams.core.catalog import Thresholds
from streams.detection.alerts import AlertPolicy, Lifecycle, static_severity

POLICY = AlertPolicy(
    open_score=0.5,
    critical_score=0.75,
    resolve_score=0.35,
    min_points=2,
    resolve_points=2,
    cooldown_points=3,
)


def feed(scores: list[float], *, ready: bool = True, held: bool = False) -> list[str]:
    """The transitions, one entry per point: "" or "opened:<severity>" / "resolved"."""
    life = Lifecycle(POLICY)
    out = []
    for i, score in enumerate(scores):
        change = life.step(float(i), score, ready=ready, held=held)
        if change is None:
            out.append("")
        elif change.state == "opened":
            out.append(f"opened:{change.severity}@{change.started_at:g}")
        else:
            out.append("resolved")
    return out


def test_one_anomalous_point_is_not_an_alert() -> None:
    assert feed([0.1, 0.9, 0.1, 0.1]) == ["", "", "", ""]


def test_opens_after_the_minimum_duration_and_dates_it_from_the_first_point() -> None:
    assert feed([0.1, 0.6, 0.6, 0.6]) == ["", "", "opened:warning@1", ""]


def test_severity_from_the_score_and_it_only_rises() -> None:
    life = Lifecycle(POLICY)
    life.step(0, 0.6, ready=True)
    opened = life.step(1, 0.6, ready=True)
    assert opened is not None
    assert opened.severity == "warning"
    life.step(2, 0.9, ready=True)
    assert life.severity == "critical"
    life.step(3, 0.6, ready=True)
    assert life.severity == "critical"


def test_hysteresis_keeps_it_open_between_resolve_and_open_scores() -> None:
    # 0.4 is below open (0.5) but above resolve (0.35): still open
    assert feed([0.6, 0.6, 0.4, 0.4, 0.4, 0.2, 0.2]) == [
        "",
        "opened:warning@0",
        "",
        "",
        "",
        "",
        "resolved",
    ]


def test_resolves_after_the_resolve_points_in_band_and_then_cools_down() -> None:
    got = feed([0.6, 0.6, 0.1, 0.1, 0.6, 0.6, 0.6, 0.6, 0.6])
    assert got[1] == "opened:warning@0"
    assert got[3] == "resolved"
    # cooldown: points 4, 5 and 6 are ignored; 7 and 8 open a new alert
    assert got[4:7] == ["", "", ""]
    assert got[8] == "opened:warning@7"


def test_nothing_opens_during_warm_up_or_while_held() -> None:
    assert feed([0.9] * 5, ready=False) == [""] * 5
    assert feed([0.9] * 5, held=True) == [""] * 5


def test_static_thresholds_alert_even_during_warm_up() -> None:
    life = Lifecycle(POLICY)
    assert life.step(0, 0.0, ready=False, static="critical") is None
    opened = life.step(1, 0.0, ready=False, static="critical")
    assert opened is not None
    assert opened.severity == "critical"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0.95", None), ("0.8", "warning"), ("0.85", None), ("0.6", "critical")],
)
def test_static_severity_from_catalog_thresholds(value: str, expected: str | None) -> None:
    bounds = Thresholds(warning_below=Decimal("0.85"), critical_below=Decimal("0.7"))
    assert static_severity(bounds, Decimal(value)) == expected


def test_a_policy_that_cannot_work_is_refused() -> None:
    with pytest.raises(ValueError, match="resolve_score"):
        AlertPolicy(open_score=0.3, resolve_score=0.5)
    with pytest.raises(ValueError, match="min_points"):
        AlertPolicy(min_points=0)


def test_an_accepted_new_level_resolves_the_open_alert_at_once() -> None:
    life = Lifecycle(POLICY)
    assert life.step(0, 0.9, ready=True) is None
    opened = life.step(1, 0.9, ready=True)
    assert opened is not None
    assert opened.state == "opened"
    assert life.step(2, 0.8, ready=True) is None
    resolved = life.step(3, 0.6, ready=True, accepted=True)  # still >= open_score: no matter
    assert resolved is not None
    assert (resolved.state, resolved.reason, resolved.started_at) == (
        "resolved",
        "new level accepted",
        0,
    )
    assert life.phase == "cooldown"
    # accepted while idle changes nothing
    idle = Lifecycle(POLICY)
    assert idle.step(0, 0.1, ready=True, accepted=True) is None
    assert idle.phase == "idle"
