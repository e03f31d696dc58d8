"""Explanations on hand-built cases."""

from __future__ import annotations

from streams.core.catalog import CATALOG
from streams.detection.explain import Point, dimension_shares, explain, input_kpis

KPIS = {k.name: k for k in CATALOG.kpis}


def point(bu: str, region: str, observed: float, expected: float, z: float = 0.0) -> Point:
    return Point((("business_unit", bu), ("region", region)), observed, expected, z)


def test_the_dimension_value_carrying_most_of_the_drop_is_named() -> None:
    siblings = [
        point("retail", "emea", 200, 1000, -8),  # -800
        point("wholesale", "emea", 900, 1000),  # -100
        point("retail", "amer", 950, 1000),  # -50
        point("wholesale", "amer", 1050, 1000),  # +50: not part of the drop
    ]
    shares = dimension_shares(siblings, -1.0)
    by_value = {(s.dimension, s.value): s.share for s in shares}
    assert by_value[("region", "emea")] == round(900 / 950, 4)
    assert by_value[("business_unit", "retail")] == round(850 / 950, 4)
    text = explain("revenue", siblings[0], siblings, {}).text
    assert text == "revenue fell 80% below expected; 95% of the drop is region=emea"


def test_a_margin_is_explained_by_the_input_that_moved() -> None:
    assert input_kpis(KPIS["gross_margin_ratio"], KPIS) == ("revenue", "cogs")
    balances = ("ar_balance", "inventory_value", "ap_balance")
    assert input_kpis(KPIS["working_capital"], KPIS) == balances
    margin = point("retail", "emea", 0.2, 0.45, -6)
    inputs = {
        "revenue": point("retail", "emea", 1010, 1000, 0.2),
        "cogs": point("retail", "emea", 808, 550, 7.5),
    }
    explanation = explain("gross_margin_ratio", margin, [margin], inputs)
    assert [m.kpi for m in explanation.inputs] == ["cogs", "revenue"]
    assert explanation.inputs[0].change == round(258 / 550, 4)
    assert explanation.text == (
        "gross_margin_ratio fell 56% below expected; because cogs rose 47% above expected "
        "(revenue within its band)"
    )


def test_a_ratio_moves_in_points_not_in_percent_of_its_expectation() -> None:
    margin = point("retail", "emea", 0.123, 0.31, -6)
    text = explain("operating_margin_ratio", margin, [margin], {}, ratio=True).text
    assert text == "operating_margin_ratio fell to 12.3% vs 31.0% expected"
    near_zero = point("retail", "emea", -0.2, 0.001, -6)  # was "fell 20100% below expected"
    text = explain("operating_margin_ratio", near_zero, [near_zero], {}, ratio=True).text
    assert text == "operating_margin_ratio fell to -20.0% vs 0.1% expected"
