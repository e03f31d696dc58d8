"""Labelled incidents: their factors, checks, ground truth and plans, and what they do to the
simulated stream.

Times are epoch seconds. `T` = 2024-03-01T00:00:00Z = 1_709_251_200, a Friday midnight.
"""

from __future__ import annotations

import io
import itertools
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.tools.incidents import (
    INCIDENT_KINDS,
    RATIO_TARGETS,
    Incident,
    load_plan,
    plan_incidents,
    read_ground_truth,
    write_ground_truth,
)
from streams.tools.simulator import SimulatedMessage, SimulationConfig, simulate

T = 1_709_251_200
H, DAY = 3600, 86_400
MIDNIGHT = datetime(2024, 3, 1, tzinfo=UTC)
EMEA = (("region", "emea"),)


# --- factor, matches, series ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "magnitude", "inside"),
    [("spike", 1.5, 2.5), ("dip", 0.6, 0.4), ("level_shift", -0.5, 0.5), ("level_shift", 0.5, 1.5)],
)
def test_constant_factors_hold_from_start_up_to_end(
    kind: Any, magnitude: float, inside: float
) -> None:
    incident = Incident(kind, "revenue", T, T + 2 * H, magnitude)
    assert incident.factor(T - 1) == 1.0
    assert incident.factor(T) == pytest.approx(inside)
    assert incident.factor(T + 2 * H - 0.001) == pytest.approx(inside)
    assert incident.factor(T + 2 * H) == 1.0  # end is exclusive


def test_drift_ramps_from_one_towards_one_plus_magnitude() -> None:
    up = Incident("drift", "cogs", T, T + 12 * H, 1.0)
    assert up.factor(T) == 1.0
    assert up.factor(T + 3 * H) == pytest.approx(1.25)
    assert up.factor(T + 6 * H) == pytest.approx(1.5)
    assert up.factor(T + 12 * H - 432) == pytest.approx(1.99)  # 432 s = 1/100 of the ramp
    assert up.factor(T + 12 * H) == 1.0
    down = Incident("drift", "opex", T, T + 12 * H, -0.6)
    assert down.factor(T + 6 * H) == pytest.approx(0.7)


def test_seasonality_break_peaks_at_midnight_and_bottoms_at_noon() -> None:
    incident = Incident("seasonality_break", "revenue", T, T + DAY, 0.6)
    assert incident.factor(T) == pytest.approx(1.6)  # cos 0 = 1
    assert incident.factor(T + 6 * H) == pytest.approx(1.0)  # cos(pi / 2) = 0
    assert incident.factor(T + 12 * H) == pytest.approx(0.4)  # cos pi = -1
    assert incident.factor(T + 16 * H) == pytest.approx(0.7)  # cos(4 pi / 3) = -1/2
    assert incident.factor(T + DAY) == 1.0


def test_silent_source_factor_is_zero_inside() -> None:
    incident = Incident("silent_source", "shipment_delivered", T, T + H)
    assert (incident.factor(T - 1), incident.factor(T), incident.factor(T + H)) == (1.0, 0.0, 1.0)


def test_matches_every_restricting_pair_and_names_its_series() -> None:
    both = Incident(
        "dip", "revenue", T, T + H, 0.5, (("region", "emea"), ("business_unit", "retail"))
    )
    assert both.dimensions == (("business_unit", "retail"), ("region", "emea"))  # sorted
    assert both.series == "revenue{business_unit=retail,region=emea}"
    assert both.matches({"business_unit": "retail", "region": "emea", "channel": "web"})
    assert not both.matches({"business_unit": "retail", "region": "amer"})
    assert not both.matches({"region": "emea"})
    everywhere = Incident("spike", "cogs", T, T + H, 1.0)
    assert everywhere.series == "cogs"
    assert everywhere.matches({})
    silent = Incident("silent_source", "order_placed", T, T + H, 0.0, EMEA)
    assert silent.series == "source:order_placed{region=emea}"


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"kind": "surge"}, "kind"),
        ({"end": T}, "end"),
        ({"end": T - H}, "end"),
        ({"start": T + 0.5}, "start"),
        ({"end": math.inf}, "end"),
        ({"magnitude": math.nan}, "magnitude"),
        ({"dimensions": (("channel", "web"),)}, "dimensions"),
        ({"dimensions": (("region", "emea"), ("region", "amer"))}, "dimensions"),
        ({"dimensions": (("region", "a;b"),)}, "dimensions"),
        ({"target": "profit"}, "target"),
        ({"kind": "silent_source", "target": "revenue"}, "target"),
        ({"kind": "silent_source", "target": "Order Placed"}, "target"),
        ({"magnitude": 0.0}, "magnitude"),
        ({"magnitude": 1.0}, "magnitude"),  # a dip to zero: that is a silent source
        ({"kind": "spike", "magnitude": -0.5}, "magnitude"),
        ({"kind": "level_shift", "magnitude": -1.0}, "magnitude"),
        ({"kind": "drift", "magnitude": 0.0}, "magnitude"),
        ({"kind": "seasonality_break", "magnitude": 1.0}, "magnitude"),
        ({"kind": "spike", "target": "csat_ratio", "magnitude": 0.5}, "target"),
        ({"kind": "level_shift", "target": "csat_ratio", "magnitude": 0.3}, "target"),
        ({"kind": "drift", "target": "on_time_delivery_ratio", "magnitude": 0.5}, "target"),
        ({"kind": "seasonality_break", "target": "on_time_delivery_ratio"}, "target"),
    ],
)
def test_bad_incidents_fail_naming_the_field(overrides: dict[str, Any], field: str) -> None:
    fields = {"kind": "dip", "target": "revenue", "start": T, "end": T + H, "magnitude": 0.5}
    with pytest.raises(ValueError, match=f"^{field} "):
        Incident(**(fields | overrides))


@pytest.mark.parametrize(
    ("kind", "target", "magnitude"),
    [
        ("dip", "csat_ratio", 0.5),
        ("level_shift", "csat_ratio", -0.3),
        ("drift", "on_time_delivery_ratio", -0.6),
        ("seasonality_break", "opex", -0.4),
        ("silent_source", "budget_set", 0.0),
    ],
)
def test_allowed_incidents(kind: Any, target: str, magnitude: float) -> None:
    assert Incident(kind, target, T, T + H, magnitude).end == T + H


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"weekly_amplitude": 1.0}, "weekly_amplitude"),
        ({"weekly_amplitude": -0.1}, "weekly_amplitude"),
        ({"weekly_amplitude": math.nan}, "weekly_amplitude"),
        ({"incidents": (Incident("silent_source", "order_teleported", T, T + H),)}, "incidents"),
    ],
)
def test_bad_simulation_options_fail_naming_the_field(
    overrides: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValueError, match=f"^{field} "):
        SimulationConfig(start=MIDNIGHT, **overrides)


# --- ground truth ------------------------------------------------------------------------------


def test_ground_truth_is_the_documented_csv_and_round_trips() -> None:
    incidents = (
        Incident("dip", "revenue", T + 12 * H, T + 15 * H, 0.6, EMEA),
        Incident(
            "seasonality_break",
            "opex",
            T + DAY,
            T + 2 * DAY,
            0.6,
            (("business_unit", "retail"), ("region", "emea")),
        ),
        Incident("silent_source", "shipment_delivered", T, T + 2 * H),
        Incident(
            "drift", "on_time_delivery_ratio", T, T + 43_200, -0.1 - 0.2
        ),  # 0.30000000000000004
    )
    out = io.StringIO()
    write_ground_truth(incidents, out)
    assert out.getvalue().splitlines() == [
        "kind,series,target,dimensions,start,end,magnitude",
        "dip,revenue{region=emea},revenue,region=emea,2024-03-01T12:00:00Z,2024-03-01T15:00:00Z,0.6",
        'seasonality_break,"opex{business_unit=retail,region=emea}",opex,'
        "business_unit=retail;region=emea,2024-03-02T00:00:00Z,2024-03-03T00:00:00Z,0.6",
        "silent_source,source:shipment_delivered,shipment_delivered,,"
        "2024-03-01T00:00:00Z,2024-03-01T02:00:00Z,0.0",
        "drift,on_time_delivery_ratio,on_time_delivery_ratio,,"
        "2024-03-01T00:00:00Z,2024-03-01T12:00:00Z,-0.30000000000000004",
    ]
    assert read_ground_truth(io.StringIO(out.getvalue())) == incidents


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind,target\n", "line 1"),
        (
            "kind,series,target,dimensions,start,end,magnitude\n"
            "dip,revenue{region=amer},revenue,region=emea,2024-03-01T12:00:00Z,"
            "2024-03-01T15:00:00Z,0.6\n",
            "line 2: series",
        ),
        (
            "kind,series,target,dimensions,start,end,magnitude\n"
            "dip,revenue,revenue,,2024-03-01T12:00:00,2024-03-01T15:00:00Z,0.6\n",
            "line 2: start",
        ),
        (
            "kind,series,target,dimensions,start,end,magnitude\ndip,revenue,revenue\n",
            "line 2: expected 7 fields",
        ),
    ],
)
def test_bad_ground_truth_names_the_line(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_ground_truth(io.StringIO(text))


# --- plan files --------------------------------------------------------------------------------


def _plan_file(tmp_path: Path, entries: Any) -> Path:
    path = tmp_path / "plan.json"
    path.write_bytes(orjson.dumps(entries))
    return path


def test_a_plan_file_gives_its_incidents(tmp_path: Path) -> None:
    path = _plan_file(
        tmp_path,
        [
            {
                "kind": "dip",
                "target": "revenue",
                "start": "2024-03-01T12:00:00Z",
                "end": "2024-03-01T15:00:00+00:00",
                "magnitude": 0.6,
                "dimensions": {"region": "emea"},
            },
            {
                "kind": "silent_source",
                "target": "order_placed",
                "start": "2024-03-01T14:00:00+02:00",  # 12:00 UTC
                "duration": 7200,
            },
        ],
    )
    assert load_plan(path) == (
        Incident("dip", "revenue", T + 12 * H, T + 15 * H, 0.6, EMEA),
        Incident("silent_source", "order_placed", T + 12 * H, T + 14 * H),
    )


GOOD = {
    "kind": "spike",
    "target": "cogs",
    "start": "2024-03-01T12:00:00Z",
    "duration": 3600,
    "magnitude": 1,
}


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"kind": "spike"}, "a plan is a JSON list"),
        ([GOOD, "spike"], "incident 1: must be an object"),
        ([GOOD | {"kind": "boom"}], "incident 0: kind must be one of"),
        ([GOOD | {"when": "now"}], "incident 0: unknown field when"),
        ([GOOD | {"start": "noon"}], "incident 0: start must be RFC 3339"),
        ([GOOD | {"end": "2024-03-01T13:00:00Z"}], "incident 0: end: give either"),
        ([GOOD | {"duration": -5}], "incident 0: duration must be > 0"),
        ([GOOD | {"magnitude": "big"}], "incident 0: magnitude must be a finite number"),
        ([GOOD | {"magnitude": 0}], "incident 0: magnitude of a spike must be > 0"),
        ([GOOD | {"dimensions": ["emea"]}], "incident 0: dimensions must be"),
        ([GOOD | {"dimensions": {"site": "x"}}], "incident 0: dimensions must be"),
    ],
)
def test_a_bad_plan_file_names_the_entry_and_field(
    tmp_path: Path, entries: Any, message: str
) -> None:
    path = _plan_file(tmp_path, entries)
    with pytest.raises(ValueError, match=f"^{re.escape(str(path))}: {message}"):
        load_plan(path)


def test_a_plan_file_that_is_not_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text("[{kind: spike}]")
    with pytest.raises(ValueError, match=f"^{re.escape(str(path))}: not JSON"):
        load_plan(path)


# --- the default plan --------------------------------------------------------------------------

PLAN_HOURS = {
    "spike": 2,
    "dip": 3,
    "level_shift": 24,
    "drift": 12,
    "seasonality_break": 24,
    "silent_source": 2,
}


def test_the_plan_starts_after_the_warmup_with_a_revenue_spike() -> None:
    plan = plan_incidents(T, 21 * DAY, 1, warmup=9 * DAY)
    assert plan[0] == Incident(
        "spike", "revenue", T + 9 * DAY, T + 9 * DAY + 2 * H, 1.5, plan[0].dimensions
    )
    later = plan_incidents(T + 1234.5, 21 * DAY, 1, warmup=9 * DAY)
    assert later[0].start == T + 9 * DAY + H  # the next whole hour


def test_a_plan_is_deterministic_in_its_seed() -> None:
    assert plan_incidents(T, 21 * DAY, 7, warmup=9 * DAY) == plan_incidents(
        T, 21 * DAY, 7, warmup=9 * DAY
    )
    assert plan_incidents(T, 21 * DAY, 7, warmup=9 * DAY) != plan_incidents(
        T, 21 * DAY, 8, warmup=9 * DAY
    )


@pytest.mark.parametrize("seed", range(20))
def test_a_plan_cycles_kinds_without_overlap_on_whole_hours(seed: int) -> None:
    start = T + 1234.5  # not a whole hour
    gap = 12 * H
    plan = plan_incidents(start, 21 * DAY, seed, warmup=9 * DAY, gap=gap)
    assert [i.kind for i in plan] == [INCIDENT_KINDS[n % 6] for n in range(len(plan))]
    assert set(INCIDENT_KINDS) <= {i.kind for i in plan}
    assert plan[0].start >= start + 9 * DAY
    assert plan[-1].end <= start + 21 * DAY
    for before, after in itertools.pairwise(plan):
        assert after.start >= before.end + 0.75 * gap
    for incident in plan:
        assert incident.start % H == 0
        assert incident.end - incident.start == PLAN_HOURS[incident.kind] * H
        if incident.kind == "seasonality_break":
            assert incident.start % DAY == 0
            assert incident.magnitude == 0.6
        if incident.target in RATIO_TARGETS or incident.kind == "silent_source":
            assert incident.dimensions in ((), EMEA, (("region", "amer"),))
        if incident.kind == "spike":
            assert incident.magnitude == 1.5
        if incident.kind == "dip":
            assert incident.magnitude == (0.5 if incident.target in RATIO_TARGETS else 0.6)


def test_a_plan_never_runs_past_the_end() -> None:
    assert plan_incidents(T, 1.5 * H, 1, warmup=0) == ()  # the first spike takes 2 hours
    assert [i.kind for i in plan_incidents(T, 2 * H, 1, warmup=0)] == ["spike"]


# --- incidents in the simulated stream ---------------------------------------------------------

WINDOW = (T + 12 * H, T + 15 * H)
INCIDENTS = (
    Incident("dip", "revenue", *WINDOW, 0.6, EMEA),
    Incident("dip", "csat_ratio", *WINDOW, 0.5),
    Incident("dip", "on_time_delivery_ratio", *WINDOW, 0.5),
    Incident(
        "silent_source", "inventory_issued", T + 12 * H, T + 14 * H, 0.0, (("region", "amer"),)
    ),
)

Timed = list[tuple[float, dict[str, Any]]]


def _valid(messages: list[SimulatedMessage]) -> Timed:
    return [(m.occurred_at, orjson.loads(m.value)) for m in messages if m.bad_kind is None]


@pytest.fixture(scope="module")
def run() -> Callable[..., Timed]:
    """11:00-16:00 UTC at 1 event/s (~28k messages), the incidents from 12:00 to 15:00."""

    def make(**overrides: Any) -> Timed:
        config = SimulationConfig(
            start=MIDNIGHT + timedelta(hours=11), rate=1.0, duration=5 * H, seed=5, **overrides
        )
        return _valid(list(simulate(config)))

    return make


@pytest.fixture(scope="module")
def without(run: Callable[..., Timed]) -> Timed:
    return run()


@pytest.fixture(scope="module")
def with_incidents(run: Callable[..., Timed]) -> Timed:
    return run(incidents=INCIDENTS)


def _inside(t: float) -> bool:
    return WINDOW[0] <= t < WINDOW[1]


def _order_sums(events: Timed) -> Counter[tuple[bool, bool]]:
    """Order amounts by (emea, inside the window)."""
    sums: Counter[tuple[bool, bool]] = Counter()
    for t, event in events:
        if event["type"] == "order_placed":
            sums[event["dimensions"]["region"] == "emea", _inside(t)] += float(event["amount"])
    return sums


def test_a_revenue_dip_scales_matching_orders_in_its_window(
    without: Timed, with_incidents: Timed
) -> None:
    before, after = _order_sums(without), _order_sums(with_incidents)
    assert 0.3 < after[True, True] / before[True, True] < 0.5  # x 0.4
    for untouched in ((False, True), (True, False), (False, False)):
        assert 0.8 < after[untouched] / before[untouched] < 1.25


def test_the_first_order_a_dip_touches_is_scaled_exactly() -> None:
    """Up to the first event an incident changes, the stream is the one without incidents."""
    dip = Incident("dip", "revenue", T + 11 * H + 600, T + 13 * H, 0.6, EMEA)
    config = SimulationConfig(start=MIDNIGHT + timedelta(hours=11), rate=1.0, duration=1200)
    plain, dipped = list(simulate(config)), list(simulate(replace(config, incidents=(dip,))))
    first = next(
        n
        for n, m in enumerate(plain)
        if m.occurred_at >= dip.start
        and m.bad_kind is None
        and (event := orjson.loads(m.value))["type"] == "order_placed"
        and event["dimensions"]["region"] == "emea"
    )
    assert plain[:first] == dipped[:first]
    original, scaled = orjson.loads(plain[first].value), orjson.loads(dipped[first].value)
    assert scaled["event_id"] == original["event_id"]
    cents = round(float(original["amount"]) * 100)
    assert round(float(scaled["amount"]) * 100) == max(1, round(cents * 0.4))


def test_a_csat_dip_halves_the_satisfied_share_in_its_window(
    without: Timed, with_incidents: Timed
) -> None:
    def satisfied(events: Timed, inside: bool) -> float:
        scores = [
            e["csat_score"]
            for t, e in events
            if e["type"] == "feedback_submitted" and "csat_score" in e and _inside(t) == inside
        ]
        assert len(scores) > 200
        return sum(s >= 4 for s in scores) / len(scores)

    assert satisfied(without, inside=True) > 0.7  # ~0.8: scores 4-5 weigh 80 of 100
    assert 0.3 < satisfied(with_incidents, inside=True) < 0.5  # ~0.8 x 0.5
    assert satisfied(with_incidents, inside=False) > 0.7


def test_an_on_time_dip_makes_deliveries_late_in_its_window(
    without: Timed, with_incidents: Timed
) -> None:
    def on_time(events: Timed, inside: bool) -> float:
        deliveries = [
            e["occurred_at"] <= e["promised_delivery_at"]  # same format: text order is time order
            for t, e in events
            if e["type"] == "shipment_delivered" and _inside(t) == inside
        ]
        assert len(deliveries) > 200
        return sum(deliveries) / len(deliveries)

    assert on_time(without, inside=True) > 0.8  # ~0.88
    # ~0.88 x 0.5, plus the last half hour or so, whose late arrival would fall after the end
    assert 0.4 < on_time(with_incidents, inside=True) < 0.65
    assert on_time(with_incidents, inside=False) > 0.8


def test_a_silent_source_sends_nothing_of_its_type_and_region_in_its_window(
    with_incidents: Timed,
) -> None:
    silent = INCIDENTS[-1]
    issued = Counter(
        (e["dimensions"]["region"], silent.start <= t < silent.end)
        for t, e in with_incidents
        if e["type"] == "inventory_issued"
    )
    assert issued["amer", True] == 0
    assert issued["amer", False] > 100  # before and after
    assert issued["emea", True] > 100  # another region keeps sending


def test_incidents_outside_the_run_change_nothing(
    run: Callable[..., Timed], without: Timed
) -> None:
    later = plan_incidents(T + DAY, 21 * DAY, 1, warmup=0)
    assert len(later) > 6
    assert run(incidents=later) == without


def test_the_weekly_shape_lowers_weekends_and_keeps_the_mean() -> None:
    rate, amplitude = 0.01, 0.5
    monday = datetime(2024, 3, 4, tzinfo=UTC)
    config = SimulationConfig(
        start=monday, rate=rate, duration=14 * DAY, bad_ratio=0.0, weekly_amplitude=amplitude
    )
    days = Counter(
        datetime.fromtimestamp(m.occurred_at, UTC).weekday() >= 5 for m in simulate(config)
    )
    weekend, weekday = days[True] / 4, days[False] / 10  # per day: 2 weekends, 2 x 5 weekdays
    expected = (1 - amplitude) / (1 + amplitude * 2 / 5)  # 0.5 / 1.2 = 0.4167
    assert weekend / weekday == pytest.approx(expected, rel=0.1)
    assert days.total() == pytest.approx(rate * 14 * DAY, rel=0.05)  # 12096
