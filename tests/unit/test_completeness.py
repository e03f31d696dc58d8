"""Data completeness: silent and lagging sources, learned per source."""

from __future__ import annotations

from streams.core.completeness import Completeness


def steady(monitor: Completeness, source: str, start: float, every: float, count: int) -> float:
    t = start
    for _ in range(count):
        monitor.observe(source, t)
        t += every
    return t - every


def test_a_source_that_goes_silent_is_stale_once_and_recovers() -> None:
    monitor = Completeness(min_silence=300, factor=3)
    last = steady(monitor, "order_placed", 0, 10, 100)
    assert monitor.check(last + 299) == []
    opened = monitor.check(last + 301)
    assert [(c.source, c.state, c.since) for c in opened] == [
        ("order_placed", "opened", last + 300)
    ]
    assert monitor.check(last + 400) == []  # one alert, not one per check
    monitor.observe("order_placed", last + 500)
    resolved = monitor.check(last + 501)
    assert [(c.source, c.state) for c in resolved] == [("order_placed", "resolved")]


def test_the_allowed_silence_follows_each_source_s_usual_gaps() -> None:
    monitor = Completeness(min_silence=300, factor=3)
    steady(monitor, "budget_set", 0, 3600, 30)  # hourly: 3 h of silence is normal
    last = 29 * 3600
    assert monitor.allowed("budget_set") == 3 * 3600
    assert monitor.check(last + 2 * 3600) == []
    assert [c.state for c in monitor.check(last + 3 * 3600 + 1)] == ["opened"]


def test_an_outage_is_not_learned_as_a_normal_gap_and_is_remembered() -> None:
    monitor = Completeness(min_silence=300, factor=3)
    last = steady(monitor, "shipment_delivered", 0, 10, 100)
    monitor.observe("shipment_delivered", last + 7200)  # two hours of nothing
    assert monitor.allowed("shipment_delivered") == 300
    assert monitor.incomplete("shipment_delivered", last + 100, last + 200)
    assert not monitor.incomplete("shipment_delivered", last + 7300, last + 7400)


def test_sources_seen_too_rarely_and_reference_data_are_not_judged() -> None:
    monitor = Completeness(min_events=20)
    steady(monitor, "investment_made", 0, 10, 5)
    steady(monitor, "fx_rate", 0, 10, 100)
    assert monitor.check(10**9) == []
    assert monitor.judged() == []
