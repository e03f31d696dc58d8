"""One incident, one page: grouping alerts that open together, the root, and the end."""

from __future__ import annotations

from decimal import Decimal

from streams.core.compiler import compile_catalog
from streams.core.kpi_values import KpiValue
from streams.detection.detectors import Score
from streams.detection.incidents import Incidents, Opening, choose_root, compatible
from streams.detection.watch import AnomalyWatch, kpi_sources

CATALOG = compile_catalog()
MINUTE = 60
EMEA = (("region", "emea"),)
RETAIL = (("business_unit", "retail"),)
RETAIL_EMEA = (("business_unit", "retail"), ("region", "emea"))


def opening(kpi: str, labels: tuple[tuple[str, str], ...], deviation: float) -> Opening:
    return Opening((kpi, "1h", labels), deviation, 0.9, additive=kpi == "revenue", step=3600.0)


def test_the_root_is_the_smallest_scope_explaining_most_of_the_deviation() -> None:
    """revenue{} fell by 300; EMEA carries 280 of it (>= 0.6 x 300 = 180), retail EMEA 100 and
    all of retail 110 (< 180): the root is revenue{region=emea}. The average order value alerts
    too but is a ratio made from revenue: revenue leads."""
    group = [
        opening("average_order_value", EMEA, -20.0),
        opening("revenue", (), -300.0),
        opening("revenue", RETAIL_EMEA, -100.0),
        opening("revenue", EMEA, -280.0),
        opening("revenue", RETAIL, -110.0),
    ]
    assert choose_root(group) == ("revenue", "1h", EMEA)
    # Without the total, the coarsest alerted revenue series is EMEA itself (retail is not
    # inside its scope), and retail EMEA's 100 is below 0.6 x 280.
    assert choose_root([g for g in group if g.key[2] != ()]) == ("revenue", "1h", EMEA)


def test_alerts_are_linked_by_compatible_labels_and_a_common_source() -> None:
    assert compatible(EMEA, RETAIL_EMEA)
    assert compatible((), EMEA)
    assert not compatible(EMEA, (("region", "amer"),))
    incidents = Incidents(kpi_sources(CATALOG))
    memberships = incidents.assign(
        [
            opening("revenue", EMEA, -280.0),
            opening("revenue", (("region", "amer"),), -50.0),  # contradicts EMEA
            opening("opex", EMEA, 40.0),  # fed by other sources than revenue
            opening("revenue", RETAIL_EMEA, -100.0),
        ],
        3600.0,
    )
    roles = {key[0] + str(key[2]): m.role for key, m in memberships.items()}
    assert sorted(roles.values()) == ["related", "root", "root", "root"]
    assert memberships[("revenue", "1h", RETAIL_EMEA)].role == "related"
    assert memberships[("revenue", "1h", RETAIL_EMEA)].root == ("revenue", "1h", EMEA)
    assert len({m.incident for m in memberships.values()}) == 3
    # An alert opening later while the EMEA incident is open joins it.
    later = incidents.assign([opening("revenue", (), -310.0)], 7200.0)
    assert later[("revenue", "1h", ())].role == "related"
    assert later[("revenue", "1h", ())].incident == memberships[("revenue", "1h", EMEA)].incident
    # The root resolving first does not end it: revenue{} is still open, listed, not paging.
    incidents.resolved(("revenue", "1h", RETAIL_EMEA), 7200.0)
    incidents.resolved(("revenue", "1h", EMEA), 10800.0)
    still = incidents.membership(("revenue", "1h", ()))
    assert still is not None
    assert still.role == "related"
    # It ends when its last alert resolves; for LINGER_STEPS (6) of its root's windows it
    # still takes in linked alerts (the return to normal after a dip); then a new incident.
    incidents.resolved(("revenue", "1h", ()), 14400.0)
    rebound = incidents.assign([opening("revenue", RETAIL_EMEA, 90.0)], 14400.0 + 6 * 3600)
    assert rebound[("revenue", "1h", RETAIL_EMEA)].role == "related"
    incidents.resolved(("revenue", "1h", RETAIL_EMEA), 14400.0 + 7 * 3600)  # ends again
    fresh = incidents.assign([opening("revenue", EMEA, -280.0)], 14400.0 + 14 * 3600)
    assert fresh[("revenue", "1h", EMEA)].role == "root"


class FirstValue:
    """Expects every point to be the series' first value; below 70% of it scores 0.9."""

    def __init__(self, step: float) -> None:
        self.first: float | None = None

    def update(self, t: float, value: float) -> Score:
        if self.first is None:
            self.first = value
        low = value < 0.7 * self.first
        return Score(0.9 if low else 0.0, self.first, 0.9 * self.first, 1.1 * self.first, True)


def revenue(start: int, bu: str, region: str, value: int) -> KpiValue:
    labels = (("business_unit", bu), ("region", region))
    return KpiValue("revenue", "1m", start, start + MINUTE, labels, Decimal(value))


def test_an_emea_dip_pages_once_names_its_root_and_its_rebound_pages_no_more() -> None:
    """Three business units x two regions at 100 each. From minute 1 every EMEA segment falls
    to 10: revenue{} 600 -> 330, region=emea 300 -> 30, each business unit 200 -> 110, each
    EMEA segment 100 -> 10 (all below 70%, all alert). Root: revenue{} fell by 270, EMEA by 270
    (>= 0.6 x 270): revenue{region=emea}. From minute 4 only retail EMEA stays at 10: EMEA is
    210 (70%: in band) and the root resolves after 2 calm points, at minute 5, while retail
    (110 of 200) and retail EMEA stay open, related. From minute 6 wholesale EMEA falls to 10
    again: its alerts open at minute 7, inside the incident (open, and active 2 minutes
    before), related: no second page."""
    watch = AnomalyWatch(CATALOG, detector=FirstValue, windows=frozenset({"1m"}))
    segments = [(bu, r) for bu in ("retail", "wholesale", "marketplace") for r in ("emea", "amer")]
    events = []
    for i in range(12):
        start = i * MINUTE

        def level(bu: str, region: str, i: int = i) -> int:
            if region == "emea" and (1 <= i < 4 or (4 <= i < 8 and bu == "retail")):
                return 10
            if region == "emea" and bu == "wholesale" and i >= 6:
                return 10  # a second drop of wholesale EMEA, linked to the open incident
            return 100

        values = [revenue(start, bu, r, level(bu, r)) for bu, r in segments]
        events += [(i, e) for e in watch.observe_values(values, float(start + MINUTE))]
    opened = [(i, e) for i, e in events if e.state == "opened"]
    roots = [e for _, e in opened if e.role == "root"]
    assert [(e.kpi, e.dimensions) for e in roots] == [("revenue", EMEA)]
    # 1 total + 1 region + 3 business units + 3 EMEA segments opened at minute 2.
    assert len([e for i, e in opened if i == 2]) == 8
    assert {e.incident for _, e in opened} == {roots[0].incident}
    assert roots[0].explanation is not None
    assert "7 related alerts opened with it" in roots[0].explanation.text
    resolved = {(i, e.dimensions) for i, e in events if e.state == "resolved"}
    assert (5, EMEA) in resolved
    assert not any(i == 5 and dims == RETAIL_EMEA for i, dims in resolved)  # still open then
    later = [e for i, e in opened if i > 2]
    assert later, "the second drop opened no alert"
    assert all(e.role == "related" for e in later)
