"""Data completeness: silent and lagging sources, learned per source."""

from __future__ import annotations

from streams.detection.completeness import Completeness, judging_clock


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


def test_sources_are_judged_by_wall_clock_only_when_caught_up_and_quiet() -> None:
    mark, now = 1_000.0, 50_000.0

    def clock(caught_up: bool, quiet_for: float) -> float:
        return judging_clock(mark, now, caught_up=caught_up, quiet_for=quiet_for, quiet=10, delay=5)

    assert clock(caught_up=False, quiet_for=60) == mark  # behind: event time
    assert clock(caught_up=True, quiet_for=0.2) == mark  # a replay between two sends
    assert clock(caught_up=True, quiet_for=10) == now - 5  # nothing moves: real time
    assert (
        judging_clock(now, now - 1, caught_up=True, quiet_for=99, quiet=10, delay=5) == now
    )  # never back


def test_a_replay_read_as_fast_as_it_is_sent_does_not_flap_stale() -> None:
    """History replayed hours behind real time: caught up between sends, never quiet."""
    monitor = Completeness(min_silence=300, factor=3)
    now = 100_000.0
    changes = []
    for i in range(200):
        t = i * 10.0  # events 27 h behind `now`
        monitor.observe("order_placed", t)
        clock = judging_clock(t, now, caught_up=i % 2 == 0, quiet_for=0.1, quiet=10, delay=5)
        changes += monitor.check(clock)
    assert changes == []
    stale = monitor.check(
        judging_clock(1990.0, now, caught_up=True, quiet_for=11, quiet=10, delay=5)
    )
    assert [(c.source, c.state) for c in stale] == [("order_placed", "opened")]
