"""Detection state recorded and restored: a watch rebuilt from its records at any window instance
goes on exactly as the watch that never stopped (same alerts, scores, bands and incidents)."""

from __future__ import annotations

import math
import random
from collections import deque
from decimal import Decimal

import orjson
import pytest

from streams.core.compiler import compile_catalog
from streams.core.kpi_values import KpiValue
from streams.detection.baseline import Baseline, Tuning
from streams.detection.counts import CountModel
from streams.detection.state import (
    StateError,
    decode,
    encode,
    restore,
    series_records,
    shared_record,
)
from streams.detection.watch import AnomalyEvent, AnomalyWatch

CATALOG = compile_catalog()
MINUTE = 60
START = 1_780_000_020 - 1_780_000_020 % 86_400  # a midnight, UTC
PAIRS = [(bu, region) for bu in ("retail", "wholesale") for region in ("emea", "amer", "apac")]
DIP = range(560, 600)
"""Minutes of EMEA's dip: its revenue falls to a third."""


def minute(i: int, rng: random.Random) -> list[KpiValue]:
    """Revenue per business unit and region for minute `i`: a daily shape, noise, the dip."""
    t = START + i * MINUTE
    shape = 1.0 + 0.4 * math.sin(2 * math.pi * (i % 1440) / 1440)
    values = []
    for bu, region in PAIRS:
        level = 1000.0 * shape * (0.33 if region == "emea" and i in DIP else 1.0)
        amount = Decimal(f"{max(0.0, rng.gauss(level, 0.08 * level)):.2f}")
        labels = (("business_unit", bu), ("region", region))
        values.append(KpiValue("revenue", "1m", t, t + MINUTE, labels, amount))
    return values


def stream(minutes: int) -> list[list[KpiValue]]:
    rng = random.Random(20261206)
    return [minute(i, rng) for i in range(minutes)]


def feed(watch: AnomalyWatch, instances: list[list[KpiValue]]) -> list[AnomalyEvent]:
    events: list[AnomalyEvent] = []
    for values in instances:
        events += watch.observe_values(values, clock=float(values[0].end))
    return events


def recorded(watch: AnomalyWatch) -> tuple[list[bytes], bytes]:
    return list(series_records(watch, watch.series).values()), shared_record(watch)


def test_a_watch_restored_at_any_instance_goes_on_as_if_it_never_stopped() -> None:
    instances = stream(660)
    whole = AnomalyWatch(CATALOG)
    want = feed(whole, instances)
    opened = [e for e in want if e.state == "opened"]
    assert opened, "the dip opened no alert: the comparison would prove nothing"
    assert any(e.role == "related" for e in opened), "an incident with related alerts"
    for cut in (30, 300, 565, 575, 590, 620):  # before warm-up, warm, in the dip, after it
        first = AnomalyWatch(CATALOG)
        before = feed(first, instances[:cut])
        series, shared = recorded(first)
        again = AnomalyWatch(CATALOG)
        assert restore(again, series, shared) == []
        after = feed(again, instances[cut:])
        assert before + after == want, f"restored after {cut} minutes"
        assert recorded(again) == recorded(whole)


def test_records_written_before_the_baseline_was_renamed_restore_the_same_watch() -> None:
    instances = stream(620)
    whole = AnomalyWatch(CATALOG)
    want = feed(whole, instances)
    first = AnomalyWatch(CATALOG)
    before = feed(first, instances[:575])
    series, shared = recorded(first)
    assert all(b'"c":"Baseline"' in record for record in series)
    older = [record.replace(b'"c":"Baseline"', b'"c":"_Baseline"') for record in series]
    again = AnomalyWatch(CATALOG)
    assert restore(again, older, shared) == []
    assert before + feed(again, instances[575:]) == want
    assert recorded(again) == recorded(whole)


def test_records_round_trip_exactly() -> None:
    value = {
        "floats": [0.1, 1e-300, -0.0, math.inf, -math.inf],
        ("a", 1): (Decimal("12.30"), frozenset({"x", "y"}), {3, 4}),
        5: deque([1.5, 2.5], maxlen=4),
    }
    back = decode(encode(value))
    assert back == value
    assert isinstance(back[5], deque)
    assert back[5].maxlen == 4
    assert math.isnan(decode(encode(math.nan)))
    assert str(back[("a", 1)][0]) == "12.30"


def test_an_object_shared_by_two_holders_comes_back_shared() -> None:
    whole = AnomalyWatch(CATALOG)
    feed(whole, stream(566))
    incidents = whole.shared_state()[0]
    assert incidents._of, "an incident is open at minute 566"
    back = decode(shared_record(whole))[0]
    assert {id(i) for i in back._of.values()} <= {id(i) for i in back._open}


def test_unreadable_records_name_their_problem() -> None:
    with pytest.raises(StateError, match="not recorded"):
        encode(object())
    with pytest.raises(StateError, match="unknown class 'Popen'"):
        decode(orjson.dumps({"version": 1, "state": {"c": "Popen", "i": 0, "v": {}}}))
    with pytest.raises(StateError, match="version 99"):
        decode(orjson.dumps({"version": 99, "state": None}))
    with pytest.raises(StateError, match="not JSON"):
        decode(b"\x00garbage")
    watch = AnomalyWatch(CATALOG)
    feed(watch, stream(40))
    series, shared = recorded(watch)
    fresh = AnomalyWatch(CATALOG)
    problems = restore(fresh, [b"{}", *series[1:]], shared)
    assert len(problems) == 1
    assert "version None" in problems[0]
    assert len(fresh.series) == len(watch.series) - 1


def test_a_counted_ratio_pool_is_restored_with_its_series() -> None:
    """Answers pooled below the support (5 of 7 satisfied) survive a restart: after a restore,
    4 more answers (3 satisfied) complete the pool and the series is judged on 8/11."""
    labels = (("business_unit", "retail"), ("region", "emea"))

    def csat(start: int, satisfied: int, answers: int) -> list[KpiValue]:
        value = Decimal(satisfied) / Decimal(answers)
        end = start + MINUTE
        parts = (Decimal(satisfied), Decimal(answers))
        return [KpiValue("csat_ratio", "1m", start, end, labels, value, *parts)]

    first = AnomalyWatch(CATALOG, windows=frozenset({"1m"}))
    feed(first, [csat(START, 5, 7)])
    series, shared = recorded(first)
    again = AnomalyWatch(CATALOG, windows=frozenset({"1m"}))
    assert restore(again, series, shared) == []
    s = again.series[("csat_ratio", "1m", labels)]
    assert (s.pool_numerator, s.pool_denominator, s.pool_since) == (Decimal(5), Decimal(7), START)
    assert s.score is None  # not judged yet: 7 answers
    feed(again, [csat(START + MINUTE, 3, 4)])
    assert s.score is not None  # judged
    assert s.observed == 0.7272727273  # 8/11
    assert s.last_start == START + MINUTE
    assert (s.pool_denominator, s.pool_since) == (Decimal(0), math.inf)


def test_a_weekly_baseline_recorded_with_one_daily_profile_goes_on_with_one() -> None:
    """Records written before the weekly candidate of a 5-minute series kept a weekend profile
    hold 24 slots and no `profiles`: restored, the baseline reads them as its one profile."""
    step = 300.0
    model = Baseline("weekly", step, Tuning())
    assert model.profiles == 2
    assert len(model.day) == 48
    rng = random.Random(3)
    for i in range(288 * 10):
        model.update(START + i * step, 100 + 30 * math.sin(i / 288 * 2 * math.pi) + rng.gauss(0, 3))
    saturday_13h = START + (5 - (START // 86_400 + 3) % 7) % 7 * 86_400 + 13 * 3600
    assert model._forecast(saturday_13h, 1.0, 1.0)[6:] == (24 + 13, 5)  # the weekend profile's 13h
    record = orjson.loads(encode(model))
    fields = record["state"]["v"]
    del fields["profiles"]
    fields["day"], fields["day_seen"] = fields["day"][:24], fields["day_seen"][:24]
    older = decode(orjson.dumps(record))
    assert older.profiles == 1
    assert older._forecast(saturday_13h, 1.0, 1.0)[6:] == (13, 5)  # its one profile's 13h
    for i in range(288 * 10, 288 * 17):  # a whole week more, weekends included
        assert math.isfinite(older.update(START + i * step, 100.0)[1])


def test_a_count_model_recorded_with_a_profile_of_ratios_starts_a_flat_profile() -> None:
    """Records written before a count model's profile held each slot's mean value hold `day`
    (ratios to the level) and `day_seen`: restored, the model keeps its level and dispersion
    and starts its profile again, flat."""
    model = CountModel(MINUTE)
    rng = random.Random(4)
    for i in range(300):
        model.update(START + i * MINUTE, float(rng.random() < 0.3), judge=True)
    record = orjson.loads(encode(model))
    fields = record["state"]["v"]
    for name in ("day_mean", "seen_total", "seen_slots", "slot"):
        del fields[name]
    fields["day"] = [0.02] * 24
    older = decode(orjson.dumps(record))
    assert (older.level, older.dispersion) == (model.level, model.dispersion)
    expected, *_ = older.update(START + 300 * MINUTE, 0.0, judge=True)
    assert expected == pytest.approx(model.level)  # a flat profile: the level itself
    assert older.day_seen == [0] * 5 + [1] + [0] * 18  # 05:00, its first point
