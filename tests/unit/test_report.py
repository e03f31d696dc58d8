"""`pulse report`: series read from detect and backtest CSV, scored as the stream would, drawn
to PNG and HTML."""

from __future__ import annotations

import io
import math
import subprocess
import sys

import pytest
from PIL import Image, ImageStat

from streams.core.compiler import compile_catalog
from streams.offline.report import ReportError, Selection, read_series, score_series
from streams.offline.report_chart import DPI, HEIGHT_IN, WIDTH_IN

CATALOG = compile_catalog()
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
STEP = 300
DIP = range(1000, 1012)  # points 1000..1011: an hour at 40% of the usual level


def level(i: int) -> float:
    """A daily cycle around 1000 with a little deterministic wobble."""
    base = 1000 + 300 * math.sin(2 * math.pi * i * STEP / 86_400) + 15 * math.sin(i * 1.7)
    return base * (0.4 if i in DIP else 1.0)


def detect_csv(points: int = 1100, gap: int | None = 500) -> str:
    rows = ["timestamp,value"]
    for i in range(points):
        rows.append(f"{T0 + i * STEP},{'' if i == gap else f'{level(i):.2f}'}")
    return "\n".join(rows) + "\n"


def test_the_dip_opens_an_alert_inside_it_and_the_band_brackets_normal_points():
    title, series = read_series(io.StringIO(detect_csv()), CATALOG)
    report = score_series(title, series)
    assert report.gaps == 1
    assert len(report.points) == 1099
    assert all(p.lower <= p.expected <= p.upper for p in report.points)
    dip_start, dip_end = T0 + DIP.start * STEP, T0 + DIP.stop * STEP
    opened = [a for a in report.alerts if dip_start <= a.started_at < dip_end]
    assert opened, report.alerts
    # Every dip point after the warm-up is below its band.
    dipped = [p for p in report.points if dip_start <= p.t < dip_end]
    assert all(p.ready and p.value < p.lower for p in dipped)


def test_rows_are_put_in_time_order_and_a_repeated_time_is_one_point():
    text = "timestamp,value\n30,3\n10,1\n20,2\n20,4\n40,\n"
    _, series = read_series(io.StringIO(text), CATALOG)
    assert series == [(10.0, 1.0), (20.0, 3.0), (30.0, 3.0), (40.0, None)]  # (2 + 4) / 2


def test_detect_output_with_scores_is_read_too():
    text = detect_csv(points=20, gap=None).replace("timestamp,value", "timestamp,value,score")
    with pytest.raises(ReportError, match="line 1: header"):
        read_series(io.StringIO(text), CATALOG)
    rows = ["timestamp,value,anomaly_score"] + [
        f"{T0 + i * STEP},{level(i):.2f},0.1000" for i in range(20)
    ]
    _, series = read_series(io.StringIO("\n".join(rows)), CATALOG)
    assert len(series) == 20


BACKTEST = """kpi,window,window_start,window_end,dimensions,value
revenue,1m,2026-01-01T00:00:00Z,2026-01-01T00:01:00Z,business_unit=retail;region=emea,10.50
revenue,1m,2026-01-01T00:00:00Z,2026-01-01T00:01:00Z,business_unit=retail;region=amer,4.25
revenue,1m,2026-01-01T00:01:00Z,2026-01-01T00:02:00Z,business_unit=retail;region=emea,7
revenue,5m,2026-01-01T00:00:00Z,2026-01-01T00:05:00Z,business_unit=retail;region=emea,99
csat_ratio,1m,2026-01-01T00:00:00Z,2026-01-01T00:01:00Z,business_unit=retail;region=emea,0.8
csat_ratio,1m,2026-01-01T00:00:00Z,2026-01-01T00:01:00Z,business_unit=retail;region=amer,0.6
"""


def test_backtest_flows_add_up_over_the_chosen_series():
    title, series = read_series(io.StringIO(BACKTEST), CATALOG, Selection("revenue"))
    assert title == "revenue 1m (all series)"
    assert series == [(T0, 14.75), (T0 + 60, 7.0)]  # 10.50 + 4.25; then 7
    _, emea = read_series(
        io.StringIO(BACKTEST), CATALOG, Selection("revenue", "5m", (("region", "emea"),))
    )
    assert emea == [(T0, 99.0)]


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        (Selection(), "several KPIs; choose one with --kpi"),
        (Selection("csat_ratio"), "does not add up across series"),
        (Selection("cogs"), "no rows of KPI 'cogs'"),
        (Selection("revenue", "1h"), "no rows of revenue in window '1h'"),
    ],
)
def test_backtest_selection_errors_say_what_to_choose(selection, message):
    with pytest.raises(ReportError, match=message):
        read_series(io.StringIO(BACKTEST), CATALOG, selection)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1: empty input"),
        ("when,value\n1,2\n", "line 1: header must be"),
        ("timestamp,value\n10,abc\n", "line 2: value 'abc' is not a number"),
        ("timestamp,value\n10,1,2\n", "line 2: expected 2 cells"),
    ],
)
def test_bad_input_names_the_line(text, message):
    with pytest.raises(ReportError, match=message):
        read_series(io.StringIO(text), CATALOG)


def test_pulse_report_writes_a_nonblank_png_and_a_self_contained_html(tmp_path):
    source = tmp_path / "series.csv"
    source.write_text(detect_csv())
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "report", str(source)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "1099 points (1 gaps)" in done.stderr
    png, page = tmp_path / "series-report.png", tmp_path / "series-report.html"
    assert png.stat().st_size > 20_000
    with Image.open(png) as image:
        assert image.size == (round(WIDTH_IN * DPI), round(HEIGHT_IN * DPI))
        stat = ImageStat.Stat(image.convert("L"))
        assert stat.stddev[0] > 20  # not blank: a white page has 0
        colors = image.convert("RGB").getcolors(maxcolors=1 << 20) or []
        assert len(colors) > 50  # band, lines, markers and anti-aliasing
    text = page.read_text()
    assert "<svg" in text
    assert "<script" not in text
    assert "src=" not in text  # nothing loaded from elsewhere: the chart is inline
    assert "warning" in text or "critical" in text  # the dip's alert is in the table


def test_pulse_report_refuses_a_bad_file_with_its_name(tmp_path):
    source = tmp_path / "bad.csv"
    source.write_text("when,value\n1,2\n")
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "report", str(source)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "bad.csv, line 1: header must be" in done.stderr
    assert not (tmp_path / "bad-report.png").exists()
