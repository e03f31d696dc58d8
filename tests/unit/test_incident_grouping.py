"""One incident, one page: grouping alerts that open together, the root, and the end."""

from __future__ import annotations

from decimal import Decimal

from streams.core.compiler import compile_catalog
from streams.core.kpi_values import KpiValue
from streams.detection.detectors import Score
from streams.detection.incidents import Incidents, Opening, choose_root, compatible
from streams.detection.watch import AnomalyWatch, kpi_causes, kpi_sources
from streams.tools.evaluate import score

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

    def update(self, t: float, value: float, weight: float | None = None) -> Score:
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


def _roots_after(
    batches: list[list[Opening]],
) -> tuple[SeriesKeyT, list[tuple[SeriesKeyT, SeriesKeyT]]]:
    """Feed `batches` (one per window instance, an hour apart) to fresh `Incidents`; the final
    root of the one incident they form, and every page move on the way."""
    incidents = Incidents(kpi_sources(CATALOG))
    moves: list[tuple[SeriesKeyT, SeriesKeyT]] = []
    for i, batch in enumerate(batches):
        incidents.assign(batch, 3600.0 * (i + 1))
        moves += incidents.moved
    member = incidents.membership(batches[0][0].key)
    assert member is not None
    return member.root, moves


SeriesKeyT = tuple[str, str, tuple[tuple[str, str], ...]]


def test_the_root_does_not_depend_on_which_alert_opened_first() -> None:
    """The same EMEA dip, its alerts opening in two orders. revenue{} fell by 300, EMEA by 280
    (>= 0.6 x 300 = 180), retail EMEA by 100 (< 180): the rule names revenue{region=emea}.
    Retail EMEA first: it is the root for an hour, then EMEA joins with the total and takes the
    page (one move). EMEA and the total first: EMEA is the root, retail EMEA joins as related
    (no move). Either way the root is revenue{region=emea}."""
    total, emea, retail_emea = (
        opening("revenue", (), -300.0),
        opening("revenue", EMEA, -280.0),
        opening("revenue", RETAIL_EMEA, -100.0),
    )
    root, moves = _roots_after([[retail_emea], [total, emea]])
    assert root == ("revenue", "1h", EMEA)
    assert moves == [(("revenue", "1h", RETAIL_EMEA), ("revenue", "1h", EMEA))]
    root, moves = _roots_after([[emea, total], [retail_emea]])
    assert root == ("revenue", "1h", EMEA)
    assert moves == []
    # Three instances, one alert each: EMEA alone is the root; the total (300) joins: the rule
    # over {EMEA, total} still names EMEA (280 >= 180); retail EMEA joins: related.
    root, moves = _roots_after([[emea], [total], [retail_emea]])
    assert (root, moves) == (("revenue", "1h", EMEA), [])


def test_a_page_moves_only_to_a_joining_alert_and_only_while_the_root_is_open() -> None:
    """Retail EMEA (-100) opens alone and is the root. Then the total (-300) joins: the rule
    over {retail EMEA, total} names the total (retail EMEA's 100 < 0.6 x 300 = 180): the total,
    a joining alert, takes the page. EMEA (-280) joining next names EMEA: it takes the page from
    the total. In a second run the root (retail EMEA) resolves before the total joins: the
    incident has paged; the total joins as related, no move."""
    total, emea, retail_emea = (
        opening("revenue", (), -300.0),
        opening("revenue", EMEA, -280.0),
        opening("revenue", RETAIL_EMEA, -100.0),
    )
    root, moves = _roots_after([[retail_emea], [total], [emea]])
    assert root == ("revenue", "1h", EMEA)
    assert moves == [
        (("revenue", "1h", RETAIL_EMEA), ("revenue", "1h", ())),
        (("revenue", "1h", ()), ("revenue", "1h", EMEA)),
    ]
    incidents = Incidents(kpi_sources(CATALOG))
    first = incidents.assign([retail_emea], 3600.0)[retail_emea.key]
    incidents.assign([opening("revenue", RETAIL, -110.0)], 7200.0)  # keeps it open
    incidents.resolved(retail_emea.key, 7200.0)
    later = incidents.assign([total], 10800.0)[total.key]
    assert (later.role, later.incident, incidents.moved) == ("related", first.incident, [])


def test_a_moved_page_flips_the_previous_root_to_related_in_the_watch() -> None:
    """Six segments at 100; retail EMEA falls to 10 from minute 1 (its alert opens at minute 2,
    alone: root). From minute 3 the other EMEA segments fall to 10 too: revenue{} 600 -> 330
    (-270), region=emea 300 -> 30 (-270), each business unit -90; their alerts open at minute
    4 and join the incident. The rule over the incident's open revenue alerts: coarsest
    revenue{} (-270); EMEA has -270 >= 0.6 x 270 and one label; retail EMEA -90 < 162. So
    revenue{region=emea} takes the page: its opened message is the root's and says so, retail
    EMEA's series is related from then on, and `pulse evaluate` counts one page."""
    watch = AnomalyWatch(CATALOG, detector=FirstValue, windows=frozenset({"1m"}))
    segments = [(bu, r) for bu in ("retail", "wholesale", "marketplace") for r in ("emea", "amer")]
    events = []
    for i in range(6):
        start = i * MINUTE

        def level(bu: str, region: str, i: int = i) -> int:
            if region == "emea" and ((bu == "retail" and i >= 1) or i >= 3):
                return 10
            return 100

        values = [revenue(start, bu, r, level(bu, r)) for bu, r in segments]
        events += [(i, e) for e in watch.observe_values(values, float(start + MINUTE))]
    roots = [(i, e) for i, e in events if e.state == "opened" and e.role == "root"]
    assert [(i, e.kpi, e.dimensions) for i, e in roots] == [
        (2, "revenue", RETAIL_EMEA),
        (4, "revenue", EMEA),
    ]
    first, moved = roots[0][1], roots[1][1]
    assert moved.incident == first.incident  # one incident, its id unchanged
    assert moved.explanation is not None
    assert moved.explanation.text.endswith(
        f"; takes over the page of incident {first.incident} from revenue{{"
        "business_unit=retail,region=emea}[1m]"
    )
    assert watch.series[("revenue", "1m", RETAIL_EMEA)].role == "related"
    assert watch.series[("revenue", "1m", EMEA)].role == "root"
    report = score("t", [e for _, e in events], [], CATALOG, MINUTE)
    assert report.alerts == 1  # one page: the move is not a second one


def test_a_new_cause_does_not_join_an_unrelated_incident_through_a_compatible_total() -> None:
    """A false alarm on retail APAC's operating margin opens and its root resolves; within its
    linger time an EMEA revenue dip opens revenue{} (compatible with anything), EMEA and retail
    EMEA. Linked through revenue{} to a past member, the dip used to join as related and page
    nothing. The group's own root, revenue{region=emea} (280 >= 0.6 x 300), contradicts the
    margin's region: a new incident, which pages."""
    apac = (("business_unit", "retail"), ("region", "apac"))
    incidents = Incidents(kpi_causes(CATALOG))
    margin = opening("operating_margin_ratio", apac, 0.5)
    incidents.assign([margin], 3600.0)
    incidents.resolved(margin.key, 7200.0)  # ended: it lingers 6 hours
    dip = [
        opening("revenue", (), -300.0),
        opening("revenue", EMEA, -280.0),
        opening("revenue", RETAIL_EMEA, -100.0),
    ]
    roles = incidents.assign(dip, 10800.0)
    assert roles[("revenue", "1h", EMEA)].role == "root"
    assert {m.incident for m in roles.values()} == {roles[("revenue", "1h", EMEA)].incident}
    # the return to normal of a series that was part of the dip joins it, once it has ended
    for o in dip:
        incidents.resolved(o.key, 14400.0)
    rebound = incidents.assign([opening("revenue", EMEA, 150.0)], 18000.0)
    assert rebound[("revenue", "1h", EMEA)].role == "related"
    # a new cause opening then, linked to the ended dip only through its total, is new
    other = incidents.assign([opening("revenue", (("region", "amer"),), -90.0)], 18000.0)
    assert other[("revenue", "1h", (("region", "amer"),))].role == "root"


def test_cost_of_goods_follows_orders_into_the_same_incident() -> None:
    """Retail revenue falls 70% and a minute later retail COGS falls with it (fewer orders,
    fewer goods issued). COGS is fed by inventory_issued, revenue by order_placed: only the
    business flow (goods issued follow orders) links them, and COGS joins as related. A
    wholesale COGS alert does not (its business unit contradicts)."""
    retail = (("business_unit", "retail"),)
    assert not kpi_sources(CATALOG)["cogs"] & kpi_sources(CATALOG)["revenue"]
    assert "order_placed" in kpi_causes(CATALOG)["cogs"]
    incidents = Incidents(kpi_causes(CATALOG))
    first = incidents.assign([opening("revenue", retail, -10000.0)], 3600.0)
    later = incidents.assign([opening("cogs", retail, -1400.0)], 7200.0)
    assert later[("cogs", "1h", retail)].role == "related"
    assert later[("cogs", "1h", retail)].incident == first[("revenue", "1h", retail)].incident
    wholesale = (("business_unit", "wholesale"),)
    other = incidents.assign([opening("cogs", wholesale, 800.0)], 7200.0)
    assert other[("cogs", "1h", wholesale)].role == "root"


def test_a_sibling_segment_opening_a_minute_later_joins_and_takes_the_page() -> None:
    """Retail EMEA (-100) opens alone; an hour later wholesale EMEA (-400) opens: their labels
    contradict (business unit), but they are the same KPI over segments that share
    region=emea, so it joins; over the two, the larger deviation takes the page (one incident).
    Marketplace EMEA's COGS (goods issued follow orders) joins later as a sibling too.
    Marketplace APAC shares no value with either: a new incident."""
    wholesale_emea = (("business_unit", "wholesale"), ("region", "emea"))
    incidents = Incidents(kpi_causes(CATALOG))
    first = incidents.assign([opening("revenue", RETAIL_EMEA, -100.0)], 3600.0)
    later = incidents.assign([opening("revenue", wholesale_emea, -400.0)], 7200.0)
    joined = later[("revenue", "1h", wholesale_emea)]
    assert joined.incident == first[("revenue", "1h", RETAIL_EMEA)].incident
    assert joined.role == "root"
    assert incidents.moved == [(("revenue", "1h", RETAIL_EMEA), ("revenue", "1h", wholesale_emea))]
    marketplace_emea = (("business_unit", "marketplace"), ("region", "emea"))
    rebound = incidents.assign([opening("cogs", marketplace_emea, 300.0)], 10800.0)
    assert rebound[("cogs", "1h", marketplace_emea)].incident == joined.incident  # fed alike
    apac = (("business_unit", "marketplace"), ("region", "apac"))
    other = incidents.assign([opening("revenue", apac, -50.0)], 7200.0)
    assert other[("revenue", "1h", apac)].incident != joined.incident


def test_a_ratio_of_measures_is_the_root_before_a_margin() -> None:
    """Revenue of retail EMEA fell inside its (wide) band; its average order value and gross
    margin opened together. The average order value (revenue / orders) is a step closer to
    what moved than the margin ((revenue - COGS) / revenue): the root,
    even though the margin scores higher and alerts at more levels."""
    margin = [
        Opening(("gross_margin_ratio", "1m", labels), -0.3, 0.95, additive=False, combined=True)
        for labels in (RETAIL_EMEA, EMEA)
    ]
    aov = Opening(("average_order_value", "1m", RETAIL_EMEA), -40.0, 0.8, additive=False)
    assert choose_root([*margin, aov]) == aov.key


def test_sibling_segments_opening_together_are_one_incident() -> None:
    """A retail dip opens retail AMER (-300) and retail APAC (-100) at the same minute; their
    regions contradict, but they are siblings (retail shared) of one KPI: one incident, rooted
    at the larger."""
    amer = (("business_unit", "retail"), ("region", "amer"))
    apac = (("business_unit", "retail"), ("region", "apac"))
    incidents = Incidents(kpi_causes(CATALOG))
    roles = incidents.assign(
        [opening("revenue", amer, -300.0), opening("revenue", apac, -100.0)], 3600.0
    )
    assert len({m.incident for m in roles.values()}) == 1
    assert roles[("revenue", "1h", amer)].role == "root"
    assert roles[("revenue", "1h", apac)].role == "related"
