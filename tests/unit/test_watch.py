"""AnomalyWatch on hand-built window values: roll-ups, quiet series, support, stale sources."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from streams.core.compiler import compile_catalog
from streams.core.kpi_values import KpiValue
from streams.detection.detectors import Score
from streams.detection.watch import MIN_SUPPORT, AnomalyWatch, rollups

CATALOG = compile_catalog()
MINUTE = 60


class Recorder:
    """A detector that records what it is fed and scores from a script."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.fed: list[tuple[float, float]] = []
        self.script: dict[int, float] = {}

    def update(self, t: float, value: float, weight: float | None = None) -> Score:
        self.fed.append((t, value))
        score = self.script.get(len(self.fed), 0.0)
        return Score(score, 100.0, 90.0, 110.0, ready=True, z=-10.0 if score else 0.0)


class Weighed(Recorder):
    """A recorder that also keeps the weight each point was fed with."""

    def __init__(self, step: float) -> None:
        super().__init__(step)
        self.weights: list[float | None] = []

    def update(self, t: float, value: float, weight: float | None = None) -> Score:
        self.weights.append(weight)
        return super().update(t, value, weight)


def revenue(start: int, bu: str, region: str, value: str) -> KpiValue:
    labels = (("business_unit", bu), ("region", region))
    return KpiValue("revenue", "1m", start, start + MINUTE, labels, Decimal(value))


def csat(start: int, satisfied: int, answers: int) -> KpiValue:
    labels = (("business_unit", "retail"), ("region", "emea"))
    value = Decimal(satisfied) / Decimal(answers)
    return KpiValue(
        "csat_ratio",
        "1m",
        start,
        start + MINUTE,
        labels,
        value,
        Decimal(satisfied),
        Decimal(answers),
    )


def test_roll_ups_add_sums_and_recompute_ratios() -> None:
    values = [revenue(0, "retail", "emea", "10.5"), revenue(0, "retail", "amer", "4.5")]
    values += [csat(0, 8, 10), csat(0, 27, 30)]
    by_key = {(v.kpi, v.labels): v for v in rollups(CATALOG, values)}
    assert by_key[("revenue", ())].value == Decimal("15.0")
    assert by_key[("revenue", (("region", "emea"),))].value == Decimal("10.5")
    assert by_key[("revenue", (("business_unit", "retail"),))].value == Decimal("15.0")
    total = by_key[("csat_ratio", ())]
    assert (total.numerator, total.denominator) == (Decimal(35), Decimal(40))
    assert total.value == Decimal("0.875")


def test_a_quiet_flow_series_is_fed_a_zero_and_a_thin_ratio_is_a_gap() -> None:
    detectors: list[Recorder] = []

    def make(step: float) -> Recorder:
        detectors.append(Recorder(step))
        return detectors[-1]

    watch = AnomalyWatch(CATALOG, detector=make)
    enough = MIN_SUPPORT
    watch.observe_values([revenue(0, "retail", "emea", "10"), csat(0, enough - 5, enough)], 0.0)
    watch.observe_values([revenue(60, "retail", "amer", "5"), csat(60, 9, enough - 1)], 0.0)
    fed = {k: d.fed for k, d in zip(watch.series, detectors, strict=True)}
    emea = ("revenue", "1m", (("business_unit", "retail"), ("region", "emea")))
    assert fed[emea] == [(0.0, 10.0), (60.0, 0.0)]  # quiet in the second minute: 0
    ratio = ("csat_ratio", "1m", (("business_unit", "retail"), ("region", "emea")))
    # one answer short of the support: a gap, not a point
    assert fed[ratio] == [(0.0, (enough - 5) / enough)]


def test_a_stale_source_raises_one_alert_and_holds_its_kpis() -> None:
    detectors: list[Recorder] = []

    def make(step: float) -> Recorder:
        detectors.append(Recorder(step))
        detectors[-1].script = {2: 0.9, 3: 0.9}
        return detectors[-1]

    watch = AnomalyWatch(CATALOG, detector=make)
    for i in range(30):
        watch.observe_event("order_placed", float(i * 10))
    watch.observe_values([revenue(0, "retail", "emea", "10")], 300.0)
    # order_placed silent from t=290: stale after 300 s of silence, at 590
    events = watch.observe_values([revenue(600, "retail", "emea", "1")], 700.0)
    assert [(e.alert, e.state, e.source) for e in events] == [
        ("data_stale", "opened", "order_placed")
    ]
    events = watch.observe_values([revenue(660, "retail", "emea", "1")], 720.0)
    assert events == []  # revenue depends on order_placed: held, no cascade
    watch.observe_event("order_placed", 730.0)
    events = watch.observe_values([], 731.0)
    assert [(e.alert, e.state) for e in events] == [("data_stale", "resolved")]


def test_the_watch_is_capped_totals_first() -> None:
    # One minute of 5 (unit, region) pairs: 5 finest series, roll-ups per unit (5) and per
    # region (1), and the total (1) = 12 revenue series; 4 may be watched: the total, then
    # single dimensions in order of name and value.
    watch = AnomalyWatch(CATALOG, detector=Recorder, max_series=4)
    watch.observe_values([revenue(0, f"u{i}", "emea", "1") for i in range(5)], 0.0)
    assert sorted(labels for _, _, labels in watch.series) == [
        (),
        (("business_unit", "u0"),),
        (("business_unit", "u1"),),
        (("business_unit", "u2"),),
    ]
    assert watch.refused == 12 - 4
    watch.observe_values([revenue(60, f"u{i}", "emea", "1") for i in range(5)], 0.0)
    assert len(watch.series) == 4
    assert watch.refused == 2 * (12 - 4)


def test_a_roll_up_that_comes_late_takes_the_place_of_a_finer_series() -> None:
    # The 1h window first (its 5 total and roll-up series fill the cap of 5 with 3 finest
    # ones dropped), then the 1m window: its total and roll-ups arrive when the cap is full and
    # take the places of the watched series with the most labels, the quietest first.
    watch = AnomalyWatch(CATALOG, detector=Recorder, max_series=5)
    hour = [replace(revenue(0, f"u{i}", "emea", "1"), window="1h", end=3600) for i in range(2)]
    watch.observe_values(hour, 0.0)
    # 1h: total, u0, u1, emea (4 with fewer labels) and one finest pair: (u0, emea).
    assert len(watch.series) == 5
    finest_hour = [k for k in watch.series if len(k[2]) == 2]
    assert [k[1] for k in finest_hour] == ["1h"]

    watch.observe_values([revenue(0, "u0", "emea", "1")], 0.0)  # 1m: total, u0, emea, pair

    minute = sorted((len(labels), labels) for _, window, labels in watch.series if window == "1m")
    assert [n for n, _ in minute] == [0]  # the 1m total took the (u0, emea) 1h pair's place
    assert not any(len(k[2]) == 2 for k in watch.series)
    assert len(watch.series) == 5


def test_idle_series_are_forgotten_after_their_idle_steps() -> None:
    watch = AnomalyWatch(CATALOG, detector=Recorder, idle_steps=3)
    watch.observe_values([revenue(0, "gone", "emea", "1")], 0.0)
    gone = ("revenue", "1m", (("business_unit", "gone"), ("region", "emea")))
    # The quiet series is filled with zeros, but zeros are not values of its own: minutes 1, 2
    # and 3 leave it within 3 steps of minute 0; minute 4 is past.
    for minute in range(1, 4):
        watch.observe_values([revenue(minute * MINUTE, "kept", "emea", "1")], 0.0)
        assert gone in watch.series
    watch.observe_values([revenue(4 * MINUTE, "kept", "emea", "1")], 0.0)
    assert gone not in watch.series
    assert ("revenue", "1m", (("business_unit", "kept"), ("region", "emea"))) in watch.series
    assert ("revenue", "1m", ()) in watch.series


class FirstValue:
    """Expects every point to be the series' first value; below 70% of it scores 0.9."""

    def __init__(self, step: float) -> None:
        self.first: float | None = None

    def update(self, t: float, value: float, weight: float | None = None) -> Score:
        if self.first is None:
            self.first = value
        low = value < 0.7 * self.first
        return Score(
            0.9 if low else 0.0,
            self.first,
            0.9 * self.first,
            1.1 * self.first,
            ready=True,
            z=-10.0 if low else 0.0,
        )


def test_an_explanation_stays_inside_the_alerted_series_scope() -> None:
    """Retail EMEA drops by 90 and all of wholesale by 200. The alert on retail is explained
    by retail's own series (region=emea carries all of its drop), not by wholesale's larger
    drop, which a whole-KPI explanation would name (200 of 290: 69%)."""
    watch = AnomalyWatch(CATALOG, detector=FirstValue, windows=frozenset({"1m"}))
    units = [(bu, r) for bu in ("retail", "wholesale") for r in ("emea", "amer")]
    drop = {("retail", "emea"): "10", ("wholesale", "emea"): "0", ("wholesale", "amer"): "0"}
    events = []
    for i in range(3):
        start = i * MINUTE
        values = [
            revenue(start, bu, r, drop.get((bu, r), "100") if i else "100") for bu, r in units
        ]
        events += watch.observe_values(values, float(start + MINUTE))
    opened = {
        e.dimensions: e.explanation.text
        for e in events
        if e.state == "opened" and e.kpi == "revenue" and e.explanation is not None
    }
    # Both drops open together: one incident, rooted at wholesale (200 of revenue{}'s 290,
    # more than EMEA's 190); retail's alert is related to it, its explanation its own.
    retail, related = opened[(("business_unit", "retail"),)].split("; related to incident ")
    assert retail == "revenue fell 45% below expected; 100% of the drop is region=emea"
    assert "wholesale" not in retail
    assert related == "revenue{business_unit=wholesale}[1m]"


def test_an_open_alert_resolves_when_its_series_has_no_value_for_two_windows() -> None:
    """CSAT opens an alert (scripted 0.9 on its 2nd and 3rd points), then its sample falls
    below MIN_SUPPORT: a gap (4 answers a minute: pooled over two minutes, 8, still too few).
    After two such instances the alert resolves as "no data" (NO_DATA_STEPS = 2) instead of
    staying open until enough answers come back."""
    recorders: list[Recorder] = []

    def factory(step: float) -> Recorder:
        recorder = Recorder(step)
        recorder.script = {2: 0.9, 3: 0.9}
        recorders.append(recorder)
        return recorder

    watch = AnomalyWatch(CATALOG, detector=factory, windows=frozenset({"1m"}))
    transitions = []
    for i in range(6):
        answers = MIN_SUPPORT if i < 3 else 4  # from the 4th minute: a gap
        start = i * MINUTE
        for e in watch.observe_values([csat(start, answers - 3, answers)], float(start + MINUTE)):
            if e.kpi == "csat_ratio" and len(e.dimensions) == 2:  # the series, not a roll-up
                transitions.append((i, e.state, e.explanation.text if e.explanation else ""))
        # the same instance closing again (its final record) is no second miss
        watch.observe_values([csat(start, answers - 3, answers)], float(start + MINUTE))
    opened = [t for t in transitions if t[1] == "opened"]
    resolved = [t for t in transitions if t[1] == "resolved"]
    assert [t[0] for t in opened] == [2]
    assert resolved == [(4, "resolved", "csat_ratio has had no value to judge for 2 windows")]


def test_a_ratio_over_counted_events_is_fed_its_sample_as_weight() -> None:
    """The detector of a ratio over counted events gets the number of events behind each point
    (its denominator) as `weight`; a sum gets None. The roll-up csat_ratio{} of 12 + 30 answers
    is fed 42."""

    made: list[Weighed] = []

    def make(step: float) -> Weighed:
        made.append(Weighed(step))
        return made[-1]

    watch = AnomalyWatch(CATALOG, detector=make)
    amer = (("business_unit", "retail"), ("region", "amer"))
    answers = KpiValue(
        "csat_ratio", "1m", 0, MINUTE, amer, Decimal("0.9"), Decimal(27), Decimal(30)
    )
    watch.observe_values([revenue(0, "retail", "emea", "10"), csat(0, 10, 12), answers], 0.0)
    fed = dict(zip(watch.series, made, strict=True))
    retail_emea = (("business_unit", "retail"), ("region", "emea"))
    assert fed[("csat_ratio", "1m", retail_emea)].weights == [12.0]
    assert fed[("csat_ratio", "1m", amer)].weights == [30.0]
    assert fed[("csat_ratio", "1m", ())].weights == [42.0]
    assert fed[("revenue", "1m", retail_emea)].weights == [None]


def test_a_thin_counted_ratio_is_judged_on_its_pooled_answers() -> None:
    """Samples below MIN_SUPPORT are pooled (numerators and denominators summed) until the pool
    holds MIN_SUPPORT answers; the pooled ratio is judged at that instance, weighed by the pooled
    sample. Hand-computed: 5/7 then 3/4 -> 8/11 at minute 1; 9/12 alone at minute 2; 3/5 then
    9/12 -> 12/17 at minute 4; 2/3 at minute 5 is older than POOL_STEPS (24) instances at
    minute 30 and dropped, so 4/6 + 3/4 -> 7/10 at minute 31."""

    watch = AnomalyWatch(CATALOG, detector=Weighed, windows=frozenset({"1m"}))
    plan = {0: (5, 7), 1: (3, 4), 2: (9, 12), 3: (3, 5), 4: (9, 12), 5: (2, 3), 30: (4, 6)}
    plan[31] = (3, 4)
    for minute, (satisfied, answers) in plan.items():
        start = minute * MINUTE
        watch.observe_values([csat(start, satisfied, answers)], float(start + MINUTE))
    key = ("csat_ratio", "1m", (("business_unit", "retail"), ("region", "emea")))
    detector = watch.series[key].detector
    assert isinstance(detector, Weighed)
    assert detector.fed == [
        (60.0, 0.7272727273),  # 8/11 to the ratio quantum (10 decimals)
        (120.0, 0.75),
        (240.0, 0.7058823529),  # 12/17
        (1860.0, 0.7),
    ]
    assert detector.weights == [11.0, 12.0, 17.0, 10.0]


class ValueScore:
    """A detector that scores a value in [0, 1] as itself (a script in the values), else 0."""

    def __init__(self, step: float) -> None:
        self.step = step

    def update(self, t: float, value: float, weight: float | None = None) -> Score:
        score = value if 0.0 <= value <= 1.0 else 0.0
        return Score(score, 100.0, 90.0, 110.0, ready=True, z=5.0 if score else 0.0)


def test_a_margin_opens_only_when_one_of_its_inputs_is_out_of_its_band() -> None:
    """Retail EMEA's operating margin scores 0.9 two minutes in a row. With revenue and COGS
    within their bands (they score 0; OpEx is watched per cost center and category, and in its
    roll-ups, not per business unit and region: not judged) it does not open.
    When COGS scores 0.8 at the same minutes (out of its band) the margin opens with it. The
    average order value (revenue over orders) scoring 0.9 opens whatever its inputs say."""
    labels = (("business_unit", "retail"), ("region", "emea"))
    opex = (*labels, ("category", "payroll"), ("cost_center", "cc-retail-1"))

    def minute(start: int, cogs: str) -> list[KpiValue]:
        def kpi(name: str, value: str, at: tuple[tuple[str, str], ...] = labels) -> KpiValue:
            return KpiValue(name, "1m", start, start + MINUTE, at, Decimal(value))

        return [
            kpi("operating_margin_ratio", "0.9"),
            kpi("average_order_value", "0.9"),
            kpi("revenue", "100"),
            kpi("cogs", cogs),
            kpi("opex", "100", opex),
            kpi("orders", "100"),
        ]

    for cogs, margin_opens in (("100", False), ("0.8", True)):
        watch = AnomalyWatch(CATALOG, detector=ValueScore, windows=frozenset({"1m"}))
        events = []
        for i in range(3):
            events += watch.observe_values(minute(i * MINUTE, cogs), float((i + 1) * MINUTE))
        opened = {(e.kpi, e.dimensions) for e in events if e.state == "opened"}
        assert (("operating_margin_ratio", labels) in opened) is margin_opens, cogs
        assert ("average_order_value", labels) in opened
