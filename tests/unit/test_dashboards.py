"""Grafana boards generated from the catalog: committed, complete, and querying the right thing.

The checks on queries are written from the catalog and the metric naming of
streams/export/metrics.py, not from the generator's helpers, so a wrong query in the generator
fails here.
"""

from __future__ import annotations

import dataclasses
import json
import re
from decimal import Decimal
from typing import Any

import pytest

from streams.core.catalog import CATALOG, Kpi
from streams.generate.dashboards import (
    DASHBOARD_DIR,
    OVERVIEW_UID,
    SERVICE_UID,
    board_uid,
    render_dashboards,
)

Board = dict[str, Any]
KPIS = {k.name: k for k in CATALOG.kpis}
FLOW_WINDOWS = ["1m", "5m", "1h", "1d"]
STABLE_UIDS = {
    "pulse-overview",
    "pulse-service",
    "pulse-sales",
    "pulse-spend",
    "pulse-customer",
    "pulse-delivery",
    "pulse-working-capital",
}
DS = {"type": "prometheus", "uid": "${datasource}"}
SELECTOR = re.compile(r"\b(pulse_[a-z_]+)\{([^}]*)\}")


def exported(kpi: Kpi) -> str:
    """The family a KPI is exported as: `pulse_<name>`; KPIs kept in days are exported in
    seconds, Prometheus' base unit (`dso_days` -> `pulse_dso_seconds`)."""
    if kpi.unit == "days":
        return f"pulse_{kpi.name.removesuffix('_days')}_seconds"
    return f"pulse_{kpi.name}"


FAMILY_KPIS = {exported(k): k for k in CATALOG.kpis}


@pytest.fixture(scope="module")
def boards() -> dict[str, Board]:
    return {name: json.loads(text) for name, text in render_dashboards().items()}


def by_uid(boards: dict[str, Board], uid: str) -> Board:
    return boards[f"{uid}.json"]


def panels(board: Board) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def exprs(board: Board) -> list[str]:
    return [t["expr"] for p in panels(board) for t in p["targets"]]


def families(kpi: Kpi) -> set[str]:
    """The metric families a query of this KPI's value must read (see streams/export/metrics.py)."""
    if kpi.kind == "formula":
        return set().union(*(families(KPIS[name]) for name in kpi.numerator))
    if kpi.denominator is not None:
        return {f"{exported(kpi)}_numerator", f"{exported(kpi)}_denominator"}
    return {exported(kpi)}


def matchers(text: str) -> dict[str, str]:
    """`a="x", b=~"y"` -> {"a": "=x", "b": "=~y"}."""
    return {name: op + value for name, op, value in re.findall(r'(\w+)(=~|!=|=)"([^"]*)"', text)}


def selected_families(expr: str) -> list[str]:
    return [family for family, _ in SELECTOR.findall(expr)]


def test_committed_json_is_what_the_catalog_generates() -> None:
    committed = {p.name: p.read_text() for p in DASHBOARD_DIR.glob("*.json")}
    assert committed == render_dashboards(), (
        "grafana/dashboards differs from streams/generate/dashboards.py: regenerate the boards"
    )


def test_rendering_is_deterministic_json_with_sorted_keys() -> None:
    first, second = render_dashboards(), render_dashboards()
    assert first == second
    for text in first.values():
        assert text.endswith("}\n")
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


def test_uids_are_stable_unique_and_name_their_files(boards: dict[str, Board]) -> None:
    uids = [b["uid"] for b in boards.values()]
    assert sorted(uids) == sorted(STABLE_UIDS)  # alert rules link to /d/<uid>
    assert (OVERVIEW_UID, SERVICE_UID) == ("pulse-overview", "pulse-service")
    assert board_uid("working_capital") == "pulse-working-capital"
    assert board_uid("sales") == "pulse-sales"
    for name, board in boards.items():
        assert name == f"{board['uid']}.json"
        assert len(board["uid"]) <= 40  # Grafana's limit
        assert board["schemaVersion"] == 41
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids))


@pytest.mark.parametrize("kpi", CATALOG.kpis, ids=lambda k: k.name)
def test_every_kpi_is_queried_on_its_domain_board(boards: dict[str, Board], kpi: Kpi) -> None:
    board = by_uid(boards, board_uid(kpi.domain))
    wanted = families(kpi)
    assert any(wanted <= set(selected_families(e)) for e in exprs(board)), (
        f"{kpi.name} is not on {board['uid']}"
    )
    anomalies = next(a for a in board["annotations"]["list"] if a["name"] == "Anomalies")
    assert re.search(rf'kpi=~"[^"]*\b{kpi.name}\b', anomalies["expr"])


def test_every_panel_and_annotation_queries_the_datasource_variable(
    boards: dict[str, Board],
) -> None:
    for board in boards.values():
        for panel in panels(board):
            assert panel["datasource"] == DS, panel["title"]
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert target.get("datasource", DS) == DS
        for annotation in board["annotations"].get("list", []):
            assert annotation["datasource"] == DS


def test_template_variables(boards: dict[str, Board]) -> None:
    with_flows = {
        OVERVIEW_UID,
        *(board_uid(k.domain) for k in KPIS.values() if list(k.windows) == FLOW_WINDOWS),
    }
    assert with_flows == STABLE_UIDS - {SERVICE_UID, "pulse-working-capital"}
    for board in boards.values():
        found = {v["name"]: v for v in board["templating"]["list"]}
        source = found["datasource"]
        assert (source["type"], source["query"]) == ("datasource", "prometheus")
        assert source["current"]["value"] == "pulse-prometheus"
        for dim in ("business_unit", "region"):
            variable = found[dim]
            assert variable["type"] == "query"
            assert variable["query"] == f"label_values(pulse_revenue, {dim})"
            assert variable["multi"]
            assert variable["includeAll"]
            assert variable["allValue"] == ".*"
            assert variable["datasource"] == DS
        if board["uid"] in with_flows:
            window = found["window"]
            assert window["type"] == "custom"
            assert window["query"].split(",") == FLOW_WINDOWS
            assert window["current"]["value"] == "1h"
        else:
            assert "window" not in found


def kpi_of(family: str) -> Kpi | None:
    for suffix in ("_numerator", "_denominator"):
        if family.endswith(suffix) and family.removesuffix(suffix) in FAMILY_KPIS:
            return FAMILY_KPIS[family.removesuffix(suffix)]
    return FAMILY_KPIS.get(family)


def kpi_selectors(boards: dict[str, Board]) -> list[tuple[str, Kpi, str, str]]:
    """(expr, KPI, family, matchers) of every KPI family read by any panel."""
    found = []
    for board in boards.values():
        for expr in exprs(board):
            for family, inside in SELECTOR.findall(expr):
                kpi = kpi_of(family)
                if kpi is not None:
                    found.append((expr, kpi, family, inside))
    return found


def test_ratio_queries_divide_summed_numerators_by_summed_denominators(
    boards: dict[str, Board],
) -> None:
    ratios = {k.name for k in CATALOG.kpis if k.denominator is not None}
    assert ratios >= {"gross_margin_ratio", "nps", "dso_days", "budget_variance_ratio"}
    seen = set()
    for expr, kpi, family, _ in kpi_selectors(boards):
        if kpi.name not in ratios:
            continue
        seen.add(kpi.name)
        assert family != exported(kpi), f"averaging workers' ratios: {expr}"
        assert f"{exported(kpi)}_numerator{{" in expr, expr
        assert f"{exported(kpi)}_denominator{{" in expr, expr
        assert "sum by (" in expr or "sum(" in expr, expr
        if kpi.scale != 1:
            assert f"{kpi.scale.normalize():f} * sum" in expr, expr
    assert seen == ratios


def test_cash_conversion_cycle_is_recomputed_from_its_inputs(boards: dict[str, Board]) -> None:
    board = by_uid(boards, "pulse-working-capital")
    (expr,) = [e for e in exprs(board) if "pulse_dso_seconds_numerator" in e and "dpo" in e]
    assert "pulse_cash_conversion_cycle_seconds" not in expr
    # dso + dio - dpo in days (the board's unit), each 30 x sum(numerator) / sum(denominator)
    terms = re.findall(
        r"([+-]?) ?\(30 \* sum by \(business_unit, region\) \(pulse_(d.o)_seconds", expr
    )
    assert terms == [("", "dso"), ("+", "dio"), ("-", "dpo")]


def test_kpi_queries_filter_by_the_board_variables_and_use_real_windows(
    boards: dict[str, Board],
) -> None:
    for expr, kpi, _, inside in kpi_selectors(boards):
        labels = matchers(inside)
        for dim in ("business_unit", "region"):
            if dim in kpi.dims:
                assert labels.get(dim) == f"=~${dim}", expr
        window = labels["window"].removeprefix("=")
        if list(kpi.windows) == FLOW_WINDOWS:
            assert window == "$window", expr
        else:
            assert window in kpi.windows, expr


def test_quantiles_are_shown_per_worker_not_merged(boards: dict[str, Board]) -> None:
    board = by_uid(boards, "pulse-delivery")
    quantile_panels = [
        p for p in panels(board) if "pulse_order_cycle_time_seconds{" in p["targets"][0]["expr"]
    ]
    wanted = {str(q) for q in KPIS["order_cycle_time_seconds"].quantiles}
    assert {matchers(p["targets"][0]["expr"])["quantile"] for p in quantile_panels} == {
        f"={q}" for q in wanted
    }
    for panel in quantile_panels:
        expr = panel["targets"][0]["expr"]
        assert not re.search(r"\b(sum|avg|max|min)\b", expr), expr
        assert "{{instance}}" in panel["targets"][0]["legendFormat"]
        assert "cannot be merged" in panel["description"]


def band_targets(board: Board, kpi: str) -> list[dict[str, Any]]:
    return [
        p
        for p in panels(board)
        if any(f'kpi="{kpi}"' in t["expr"] and "pulse_kpi_" in t["expr"] for t in p["targets"])
    ]


@pytest.mark.parametrize("kpi", CATALOG.kpis, ids=lambda k: k.name)
def test_band_panels_for_the_company_totals_the_detectors_score(
    boards: dict[str, Board], kpi: Kpi
) -> None:
    board = by_uid(boards, board_uid(kpi.domain))
    found = band_targets(board, kpi.name)
    # Roll-ups to a company total exist for sums and ratios only (streams/detection/watch.py);
    # balances, formulas and quantiles are scored per full-dimension series only.
    if kpi.kind in {"balance", "formula", "quantile"}:
        assert found == []
        return
    (panel,) = found
    assert panel["description"].count("worker") >= 2
    families = {}
    for target in panel["targets"]:
        family, inside = SELECTOR.findall(target["expr"])[0]
        families[target["legendFormat"]] = family
        labels = matchers(inside)
        assert all(labels[d] == "=" for d in kpi.dims), target["expr"]  # the company total
        assert labels["instance"] == "=~$instance"
        expected_window = "$window" if len(kpi.windows) > 1 else kpi.windows[0]
        assert labels["window"] == f"={expected_window}"
    assert families == {
        "observed": "pulse_kpi_observed",
        "expected": "pulse_kpi_expected",
        "lower": "pulse_kpi_expected_lower",
        "upper": "pulse_kpi_expected_upper",
    }
    fill = [
        prop["value"]
        for o in panel["fieldConfig"]["overrides"]
        if o["matcher"] == {"id": "byName", "options": "upper"}
        for prop in o["properties"]
        if prop["id"] == "custom.fillBelowTo"
    ]
    assert fill == ["lower"]
    rows = [p for p in board["panels"] if p["type"] == "row" and p.get("repeat") == "instance"]
    assert len(rows) == 1  # one row of bands per worker


def test_domain_boards_annotate_anomalies_and_stale_data(boards: dict[str, Board]) -> None:
    for domain in {k.domain for k in CATALOG.kpis}:
        board = by_uid(boards, board_uid(domain))
        queries = {a["name"]: a["expr"] for a in board["annotations"]["list"]}
        names = {k.name for k in CATALOG.kpis if k.domain == domain}
        anomaly = re.fullmatch(
            r'pulse_kpi_anomaly_active\{kpi=~"([a-z_|]+)"\} == 1',
            queries["Anomalies"],
        )
        assert anomaly is not None
        assert set(anomaly.group(1).split("|")) == names
        assert queries["Data stale"] == "pulse_data_stale == 1"


def test_service_board_covers_the_service_families(boards: dict[str, Board]) -> None:
    text = " ".join(exprs(by_uid(boards, SERVICE_UID)))
    for needle in (
        "rate(pulse_events_processed_total[$__rate_interval])",
        "pulse_consumer_lag_messages",
        "pulse_events_rejected_total",
        "pulse_rebalances_total",
        "rate(pulse_detector_seconds_total[$__rate_interval])",
        "time() - pulse_watermark_timestamp_seconds",
        "pulse_data_stale",
        'up{job="pulse"}',
        "pulse_dimension_values_folded_total",
        "pulse_dedupe_evictions_total",
    ):
        assert needle in text, needle


def test_a_new_catalog_kpi_gets_its_panels_without_code_changes() -> None:
    refunds = Kpi(
        "refund_rate",
        "Refunds per order.",
        "ratio",
        "ratio",
        {"revenue": 1},
        {"orders": 1},
        scale=Decimal(100),
        domain="customer",
    )
    catalog = dataclasses.replace(CATALOG, kpis=(*CATALOG.kpis, refunds))
    board = json.loads(render_dashboards(catalog)["pulse-customer.json"])
    expr = next(e for e in exprs(board) if "pulse_refund_rate_numerator" in e)
    assert expr.startswith("100 * sum by (business_unit, region) (pulse_refund_rate_numerator{")
    assert band_targets(board, "refund_rate")


def _units(rendered: dict[str, str]) -> set[str]:
    return {
        p["fieldConfig"]["defaults"].get("unit", "")
        for text in rendered.values()
        for p in panels(json.loads(text))
        if "fieldConfig" in p
    }


def test_money_panels_are_in_the_reporting_currency_and_boards_are_read_only() -> None:
    money = {k.name for k in CATALOG.kpis if k.unit == "currency"}
    assert "revenue" in money
    assert "currencyEUR" in _units(render_dashboards())
    usd = _units(render_dashboards(currency="USD"))
    assert "currencyUSD" in usd
    assert "currencyEUR" not in usd
    # a currency Grafana has no unit for: its code as a suffix
    xaf = _units(render_dashboards(currency="XAF"))
    assert "suffix: XAF" in xaf
    assert not any(u.startswith("currency") for u in xaf)
    for text in render_dashboards().values():
        assert json.loads(text)["editable"] is False
