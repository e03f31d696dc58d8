"""`pulse soak`'s verdict and load shape, without a broker (the run itself: tests/integration)."""

from __future__ import annotations

import os

import pytest

from streams.tools.soak import SoakResult, rss_bytes, steady_rate

MB = 1_000_000


def test_rss_growth_up_to_the_limit_passes() -> None:
    result = SoakResult(warm_rss=100 * MB, end_rss=110 * MB, final_lag=0)
    assert result.judge(0.10)
    assert result.growth == pytest.approx(0.10)
    assert result.summary(True).endswith("| PASS")


def test_rss_growth_past_the_limit_fails_and_says_why() -> None:
    result = SoakResult(warm_rss=100 * MB, end_rss=111 * MB, final_lag=0)
    assert not result.judge(0.10)
    assert result.problems == ["RSS grew +11.0% after warm-up (limit +10%)"]
    assert "change +11.0%" in result.summary(False)


def test_lag_that_did_not_return_to_zero_fails() -> None:
    result = SoakResult(warm_rss=100 * MB, end_rss=90 * MB, final_lag=7)
    assert not result.judge(0.10)
    assert result.problems == ["lag did not return to 0 (7)"]


def test_a_run_without_a_baseline_fails() -> None:
    assert not SoakResult(end_rss=90 * MB, final_lag=0).judge(0.10)


def test_an_interrupted_run_says_so_without_a_verdict_on_figures_it_lacks() -> None:
    result = SoakResult(peak_rss=61 * MB, sent=803, interrupted=True)
    result.judge(0.10)
    assert result.summary(False) == (
        "soak: rss after warm-up n/a, at end n/a, change n/a | peak 61.0 MB | max lag 0 | "
        "final lag n/a | sent 803 | INTERRUPTED"
    )


def test_steady_rate_undoes_the_daily_shape() -> None:
    # The simulator runs at rate x (1 - 0.65 cos(2 pi t / day)): x 0.35 at midnight UTC, x 1.65
    # at noon, x 1 on average over a whole day.
    assert steady_rate(500, 0, 1) == pytest.approx(500 / 0.35, rel=1e-6)
    assert steady_rate(500, 43_200, 1) == pytest.approx(500 / 1.65, rel=1e-6)
    assert steady_rate(500, 0, 86_400) == pytest.approx(500, rel=1e-3)


def test_rss_of_this_process_matches_statm() -> None:
    with open("/proc/self/statm", encoding="ascii") as statm:
        pages = int(statm.read().split()[1])
    assert rss_bytes(os.getpid()) == pytest.approx(pages * os.sysconf("SC_PAGE_SIZE"), rel=0.05)
