"""The labelled corpus of real-world-like series (`streams.tools.corpus`), and both detectors
judged on it through `pulse evaluate --series`, as a user would run them."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from streams.cli import main
from streams.offline.detect import read_points
from streams.tools import corpus
from streams.tools.evaluate_series import read_labels, run_series


def test_the_corpus_is_reproducible_and_its_anomalies_lie_after_the_warm_up() -> None:
    first, again = corpus.generate(3, copies=1), corpus.generate(3, copies=1)
    assert [s.points for s in first] == [s.points for s in again]
    assert {s.name for s in first} == {f"{family}_1" for family in corpus.FAMILIES}
    for series in first:
        times = [t for t, _ in series.points]
        start, end = times[0], times[-1]
        for onset in series.onsets:
            assert start + corpus.QUIET_SHARE * (end - start) < onset < end
        windows = corpus.windows(series)
        total = sum(b - a for a, b in windows)
        assert total == pytest.approx(corpus.WINDOW_SHARE * (end - start))
        assert all(b <= c for (_, b), (c, _) in pairwise(windows))


def test_the_files_read_as_exported_files_do(tmp_path: Path) -> None:
    series = corpus.write(tmp_path, seed=2, copies=1)
    with (tmp_path / "labels.csv").open() as inp:
        labels = read_labels(inp)
    assert len(labels) == sum(len(s.onsets) for s in series)
    for s in series:
        with (tmp_path / f"{s.name}.csv").open() as inp:
            points, notes = read_points(inp)
        assert notes == []  # repeated and swapped rows are merged and put back, not refused
        # one point per distinct second: the repeated rows merged
        assert len(points) == len({round(t) for t, _ in s.points})


def test_ours_beats_the_baseline_on_the_corpus(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus.write(tmp_path)
    run = run_series(tmp_path, tmp_path / "labels.csv")
    ours, ewma = run.row_scores["kpi-pulse"], run.row_scores["ewma z-score"]
    assert ours.best > ewma.best
    assert run.reports[0].oncall > run.reports[1].oncall
    labels = str(tmp_path / "labels.csv")
    assert main(["evaluate", "--series", str(tmp_path), "--labels", labels]) == 0
    out = capsys.readouterr().out
    assert f"kpi-pulse      row score {ours.best:.1f}" in out
