"""`pulse evaluate`'s scoring on hand-built alerts and incidents, and its command on a short run."""

from __future__ import annotations

import math
import re

import pytest

from streams.cli import main
from streams.core.compiler import compile_catalog
from streams.detection.watch import AnomalyEvent
from streams.tools.evaluate import Scenario, affected_kpis, matches, regime_changes, score
from streams.tools.incidents import Incident

HOUR = 3600.0
CATALOG = compile_catalog()
DIP = Incident("dip", "cogs", 100 * HOUR, 103 * HOUR, 0.6, (("region", "emea"),))
SILENT = Incident("silent_source", "order_placed", 200 * HOUR, 202 * HOUR)


def kpi_alert(kpi: str, labels: dict[str, str], started: float) -> AnomalyEvent:
    return AnomalyEvent(
        "kpi_anomaly",
        "opened",
        "warning",
        started,
        started + HOUR,
        kpi=kpi,
        window="1h",
        dimensions=tuple(labels.items()),
    )


def stale(source: str, started: float) -> AnomalyEvent:
    return AnomalyEvent("data_stale", "opened", "warning", started, started, source=source)


def test_the_kpis_an_incident_moves_follow_the_catalog() -> None:
    hit = affected_kpis(CATALOG, "cogs")
    assert {"cogs", "gross_margin_ratio", "operating_margin_ratio"} <= hit
    assert "revenue" not in hit
    assert "orders" not in hit


@pytest.mark.parametrize(
    ("alert", "expected"),
    [
        (kpi_alert("cogs", {"business_unit": "retail", "region": "emea"}, 100 * HOUR), True),
        (kpi_alert("cogs", {"region": "emea"}, 101 * HOUR), True),
        (kpi_alert("cogs", {}, 100 * HOUR), True),  # the total includes EMEA
        (kpi_alert("gross_margin_ratio", {"region": "emea"}, 102 * HOUR), True),
        (kpi_alert("cogs", {"region": "amer"}, 100 * HOUR), False),  # another region
        (kpi_alert("revenue", {"region": "emea"}, 100 * HOUR), False),  # not moved by it
        (kpi_alert("cogs", {"region": "emea"}, 98 * HOUR), False),  # before it
        (kpi_alert("cogs", {"region": "emea"}, 109 * HOUR), True),  # the return, within grace
        (kpi_alert("cogs", {"region": "emea"}, 110 * HOUR), False),  # after the grace
    ],
)
def test_an_alert_matches_an_incident_on_what_it_moved_and_when(
    alert: AnomalyEvent, expected: bool
) -> None:
    assert matches(alert, DIP, affected_kpis(CATALOG, "cogs"), HOUR) is expected


def test_precision_recall_and_time_to_detect_from_hand_counted_alerts() -> None:
    alerts = [
        kpi_alert("cogs", {"region": "emea"}, 100 * HOUR),  # detects the dip after 1 h
        kpi_alert("gross_margin_ratio", {"region": "emea"}, 101 * HOUR),  # also the dip
        stale("order_placed", 200 * HOUR + 300),  # detects the silence after 5 min
        kpi_alert("revenue", {}, 200 * HOUR),  # a cascade from the silence: a false alarm
        kpi_alert("orders", {}, 50 * HOUR),  # nothing happened then: a false alarm
    ]
    report = score("ours", alerts, [DIP, SILENT], CATALOG, HOUR)
    assert report.alerts == 5
    assert report.matched == 3
    assert report.precision == 3 / 5
    assert report.recall == 1.0
    assert report.f1 == pytest.approx(2 * 0.6 / 1.6)
    assert report.kinds["dip"].delays == [HOUR]
    assert report.kinds["silent_source"].delays == [300.0]
    assert report.missed == []
    assert len(report.false_alarms) == 2
    none = score("nothing", [], [DIP, SILENT], CATALOG, HOUR)
    assert none.recall == 0.0
    assert none.missed == [DIP, SILENT]


def test_the_command_prints_both_detectors_and_every_kind(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["evaluate", "--days", "3", "--warmup-days", "1", "--rate", "0.1"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^evaluate: 3 simulated days .* incidents, \d+ events in \d+ s$", out, re.M)
    for name in ("kpi-pulse", "ewma z-score"):
        assert re.search(rf"^{name} +ALL: precision \d\.\d\d  recall \d\.\d\d  F1", out, re.M)
        assert re.search(rf"^{name} +on-call score -?\d+\.\d \(onset credit", out, re.M)


def test_the_on_call_score_credits_early_detection_and_charges_false_alerting_points() -> None:
    resolved = AnomalyEvent(
        "kpi_anomaly", "resolved", "warning", 50 * HOUR, 53 * HOUR, kpi="orders", window="1h"
    )
    alerts = [
        kpi_alert("cogs", {"region": "emea"}, 100 * HOUR),  # decided at 101 h
        stale("order_placed", 200 * HOUR + 300),
        kpi_alert("revenue", {}, 200 * HOUR),  # false, open from 200 h to the end (210 h)
        kpi_alert("orders", {}, 50 * HOUR),  # false, open 50 h to 53 h
        resolved,
    ]
    report = score("ours", alerts, [DIP, SILENT], CATALOG, HOUR, until=210 * HOUR)
    # The dip's window is [99 h, 103 h + 6 h] (10 h), the silence's [199 h, 202 h + 6 h] (9 h).
    dip = 2 / (1 + math.exp(5 * (101 - 109) / 10)) - 1  # 0.96403
    silence = 2 / (1 + math.exp(5 * (200 + 300 / HOUR - 208) / 9)) - 1  # 0.97570
    assert report.credit == pytest.approx(dip + silence)
    assert report.false_points == 10 + 3
    assert report.oncall == pytest.approx(100 * (dip + silence - 0.11 * 13 + 2) / 4)  # 62.74
    assert report.oncall == pytest.approx(62.74, abs=0.01)
    assert score("none", [], [DIP, SILENT], CATALOG, HOUR).oncall == 0.0
    # one alert at each window's first point and nothing else: close to 100
    early = [kpi_alert("cogs", {"region": "emea"}, 99 * HOUR), stale("order_placed", 199 * HOUR)]
    perfect = score("early", early, [DIP, SILENT], CATALOG, HOUR, until=210 * HOUR)
    assert perfect.false_points == 0
    assert 95 < perfect.oncall < 100


def test_regime_changes_hold_to_the_end_and_are_labelled_at_their_onset() -> None:
    scenario = Scenario(days=10.0, warmup_days=5.0, regime_changes=3)
    begin = scenario.start.timestamp()
    held, labels = regime_changes(scenario, begin, scenario.days * 86_400)
    assert len(held) == len(labels) == 3
    for change, label in zip(held, labels, strict=True):
        assert change.end == begin + 10 * 86_400  # it holds to the end of the run
        assert begin + 5 * 86_400 <= change.start <= change.end - 86_400
        assert change.start % 3600 == 0
        assert (label.start, label.end) == (change.start, change.start + 3600)  # the onset only
        assert (label.kind, label.target, label.dimensions) == (
            change.kind,
            change.target,
            change.dimensions,
        )
        assert abs(change.magnitude) == 0.4
    assert regime_changes(Scenario(), begin, 21 * 86_400) == ((), ())
