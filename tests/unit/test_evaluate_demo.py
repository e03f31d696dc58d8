"""`pulse evaluate --demo`: what on-call would receive, read from the alerts of a replay.

The replay itself (four hours of the demo's stream, ~2 minutes) is run by hand and its figures are
in the README; here the report is checked on alerts written by hand, and the options' errors."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from streams.cli import main
from streams.core import compile_catalog
from streams.detection.watch import AnomalyEvent
from streams.tools.evaluate import score
from streams.tools.evaluate_demo import DemoEvaluation, DemoRun, demo_report
from streams.tools.incidents import Incident

LIVE = datetime(2026, 12, 7, 3, 0, tzinfo=UTC).timestamp()
MINUTE = 60.0
EMEA = (("region", "emea"),)
DIP = Incident("dip", "revenue", LIVE - 40 * MINUTE, LIVE - 28 * MINUTE, 0.7, EMEA)


def alert(
    state: str,
    kpi: str,
    labels: tuple[tuple[str, str], ...],
    at: float,
    *,
    role: str = "root",
    incident: str | None = None,
) -> AnomalyEvent:
    return AnomalyEvent(
        "kpi_anomaly",
        state,  # type: ignore[arg-type]
        "critical",
        started_at=at - MINUTE,
        at=at,
        kpi=kpi,
        window="1m",
        dimensions=labels,
        score=0.9,
        incident=incident,
        role=role,  # type: ignore[arg-type]
    )


def test_each_incident_is_listed_with_its_page_and_a_false_page_apart() -> None:
    """The EMEA dip pages once as revenue{region=emea} with two related alerts, which resolve
    last at 02:34; an NPS alert of retail AMER at 02:45 matches no incident: a false page, open
    3 points. Precision 1/2, recall 1."""
    dip = "revenue{region=emea}[1m]@x"
    start = DIP.start + MINUTE
    alerts = [
        alert("opened", "revenue", EMEA, start, incident=dip),
        alert("opened", "revenue", (), start, role="related", incident=dip),
        alert("opened", "average_order_value", EMEA, start, role="related", incident=dip),
        alert("resolved", "revenue", EMEA, start + 8 * MINUTE, incident=dip),
        alert("resolved", "revenue", (), start + 9 * MINUTE, role="related", incident=dip),
        alert(
            "resolved",
            "average_order_value",
            EMEA,
            LIVE - 26 * MINUTE,
            role="related",
            incident=dip,
        ),
        alert("opened", "nps", (("business_unit", "retail"), ("region", "amer")), LIVE - 15 * 60),
        alert("resolved", "nps", (("business_unit", "retail"), ("region", "amer")), LIVE - 720),
    ]
    report = score("kpi-pulse", alerts, [DIP], compile_catalog(), MINUTE, until=LIVE)
    evaluation = DemoEvaluation(
        DemoRun(datetime.fromtimestamp(LIVE, UTC)), LIVE, (DIP,), report, alerts, 1000, 1.0
    )
    out = io.StringIO()
    demo_report(evaluation, out)
    lines = out.getvalue().splitlines()
    assert lines[1] == (
        "incident 02:20-02:32 dip revenue{region=emea}: paged at 02:20 as "
        "revenue{region=emea}[1m] (critical, 2 related alerts listed), resolved 02:34"
    )
    assert lines[2] == (
        "false page at 02:44: nps{business_unit=retail,region=amer}[1m] (critical, "
        "score 0.90), open 4 points"
    )
    assert lines[3].startswith("pages 2: precision 0.50  recall 1.00")


def test_a_missed_incident_says_so() -> None:
    report = score("kpi-pulse", [], [DIP], compile_catalog(), MINUTE, until=LIVE)
    evaluation = DemoEvaluation(
        DemoRun(datetime.fromtimestamp(LIVE, UTC)), LIVE, (DIP,), report, [], 10, 1.0
    )
    out = io.StringIO()
    demo_report(evaluation, out)
    assert "incident 02:20-02:32 dip revenue{region=emea}: missed" in out.getvalue()


def test_without_incidents_every_page_is_false() -> None:
    report = score("kpi-pulse", [], [], compile_catalog(), MINUTE, until=LIVE)
    spec = DemoRun(datetime.fromtimestamp(LIVE, UTC), incidents=False)
    out = io.StringIO()
    demo_report(DemoEvaluation(spec, LIVE, (), report, [], 10, 1.0), out)
    assert out.getvalue().splitlines()[-1] == (
        "pages 0: no incident was planned, every page is a false one"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--demo", "yesterday"], "--demo 'yesterday' is not an ISO 8601 time"),
        (["--no-incidents"], "--no-incidents goes with --demo"),
    ],
)
def test_bad_demo_options_fail_naming_them(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", *argv]) == 2
    assert message in capsys.readouterr().err


def test_minutes_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["evaluate", "--demo", "2026-12-07T03:00", "--minutes", "0"])
    assert stopped.value.code == 2
    assert "--minutes: must be > 0" in capsys.readouterr().err
