"""`pulse evaluate --series DIR --labels FILE` on hand-made series and labels."""

from __future__ import annotations

import io
import math
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from streams.cli import main
from streams.tools.evaluate_series import Label, read_labels, run_series

T0 = 1_767_571_200  # 2026-01-05T00:00:00Z, a Monday
HOUR = 3600
DIP = (16 * 24 + 10, 16 * 24 + 14)  # hours 10-13 UTC of day 16


def write_series(path: Path, seed: int, *, dip: bool) -> None:
    rng = random.Random(seed)
    lines = ["timestamp,value"]
    for hour in range(21 * 24):
        value = 100 + 40 * math.cos(2 * math.pi * (hour % 24 - 14) / 24)
        value *= 1 + rng.gauss(0, 0.03)
        if dip and DIP[0] <= hour < DIP[1]:
            value *= 0.4
        stamp = datetime.fromtimestamp(T0 + hour * HOUR, UTC).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"{stamp},{value:.3f}")  # no zone: UTC
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def history(tmp_path: Path) -> tuple[Path, Path]:
    series = tmp_path / "series"
    series.mkdir()
    write_series(series / "revenue.csv", 1, dip=True)
    write_series(series / "orders.csv", 2, dip=False)
    labels = tmp_path / "labels.csv"
    start = datetime.fromtimestamp(T0 + DIP[0] * HOUR, UTC).isoformat()
    labels.write_text(f"series,start,end\nrevenue,{start},{T0 + DIP[1] * HOUR}\n")
    return series, labels


def test_a_labelled_dip_is_found_and_scored(history: tuple[Path, Path]) -> None:
    run = run_series(*history)
    reports = run.reports
    assert run.notes == []
    ours = reports[0]
    assert ours.name == "kpi-pulse"
    assert ours.recall == 1.0
    assert ours.kinds["labelled"].incidents == 1
    # found within the window [start - 1 h, end + 6 h] (11 h long): the credit is positive
    assert 0 < ours.credit <= 2 / (1 + math.exp(-5)) - 1
    assert ours.oncall > 50
    assert reports[1].name == "ewma z-score"


def test_labels_are_read_with_their_times_and_errors_name_the_line() -> None:
    text = "series,start,end\nrevenue,2026-01-05T10:00:00Z,1767610800\n"
    assert read_labels(io.StringIO(text)) == [Label("revenue", T0 + 10 * HOUR, T0 + 11 * HOUR)]
    with pytest.raises(ValueError, match="line 2: end is before start"):
        read_labels(io.StringIO("series,start,end\nx,1767610800,1767607200\n"))
    with pytest.raises(ValueError, match="line 1: header"):
        read_labels(io.StringIO("name,from,to\n"))


def test_the_command_prints_both_detectors(
    history: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    series, labels = history
    assert main(["evaluate", "--series", str(series), "--labels", str(labels)]) == 0
    out = capsys.readouterr().out
    assert "kpi-pulse      precision" in out
    assert "ewma z-score   on-call score" in out
    assert main(["evaluate", "--series", str(series)]) == 2
