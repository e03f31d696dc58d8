"""Grafana dashboards generated from the KPI catalog (grafana-foundation-sdk, Grafana 11.6).

Boards: an executive overview (`OVERVIEW_UID`), one board per KPI domain (`board_uid`) and the
service health board (`SERVICE_UID`). Alert rules link to `/d/<uid>`: the UIDs are stable.
`render_dashboards` returns the JSON files (deterministic: sorted keys, indent 2, trailing
newline); `pulse generate` (streams/generate/files.py) writes them to `grafana/dashboards/`, where
they are committed and checked for drift. Panels come from `streams.generate.panels`, PromQL from
`streams.generate.queries`.

Pure: no Kafka, Faust or network; rendering reads only the catalog.
"""

from __future__ import annotations

import json
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model

from streams.core.catalog import CATALOG, DOMAINS, Catalog
from streams.export import names
from streams.generate.panels import (
    UNITS,
    annotation_queries,
    band_panel,
    currency_unit,
    kpi_title,
    legend_of,
    merge_note,
    stat_panel,
    target,
    timeseries_panel,
    value_panels,
    variables,
    window_note,
)
from streams.generate.queries import (
    DETECTED_TOTAL_KINDS,
    WINDOW_VARIABLE,
    board_window,
    value_expr,
)

OVERVIEW_UID = "pulse-overview"
SERVICE_UID = "pulse-service"
DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "grafana" / "dashboards"
TAG = "kpi-pulse"
OVERVIEW_KPIS = (
    "revenue",
    "gross_margin_ratio",
    "operating_margin_ratio",
    "opex",
    "working_capital",
    "csat_ratio",
    "nps",
    "on_time_delivery_ratio",
)


def board_uid(domain: str) -> str:
    """UID of a KPI domain's board: `pulse-<domain>` with `_` as `-` (`pulse-working-capital`)."""
    return f"pulse-{domain.replace('_', '-')}"


def _domain_title(domain: str) -> str:
    return domain.replace("_", " ").capitalize()


# Boards ------------------------------------------------------------------------------------


def _board(uid: str, title: str, description: str, tag: str) -> dashboard.Dashboard:
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG, tag])
        .time("now-6h", "now")
        .refresh("30s")
        .readonly()  # generated: change streams/generate, not the board
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .link(
            dashboard.DashboardLink("kpi-pulse boards")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )


def _board_link(domain: str) -> dashboard.DashboardLink:
    return dashboard.DashboardLink(f"{_domain_title(domain)} board").url(
        f"/d/{board_uid(domain)}?${{__url_time_range}}&${{__all_variables}}"
    )


def overview(catalog: Catalog = CATALOG) -> dashboard.Dashboard:
    kpis = {k.name: k for k in catalog.kpis}
    chosen = [kpis[name] for name in OVERVIEW_KPIS]
    board = _board(
        OVERVIEW_UID,
        "kpi-pulse / Executive overview",
        "Headline KPIs for the selected business units and regions, exact across workers. "
        "Each panel links to its domain board.",
        "overview",
    )
    board.variables(variables(window=True, instance=False)).annotations(annotation_queries(chosen))
    board.with_row(dashboard.Row("Now (newest closed window)"))
    for kpi in chosen:
        board.with_panel(
            stat_panel(
                kpi_title(kpi),
                f"{kpi.description} Selection total. {merge_note(kpi)} {window_note(kpi)}",
                UNITS[kpi.unit],
                value_expr(kpi, kpis),
                kpi.thresholds,
            ).links([_board_link(kpi.domain)])
        )
    board.with_row(dashboard.Row("Trends by business unit"))
    by = ["business_unit"]
    for kpi in chosen:
        board.with_panel(
            timeseries_panel(
                kpi_title(kpi),
                f"{kpi.description} {merge_note(kpi)} {window_note(kpi)}",
                UNITS[kpi.unit],
                [target(value_expr(kpi, kpis, by), legend_of(by), "A")],
                thresholds=kpi.thresholds,
            ).links([_board_link(kpi.domain)])
        )
    return board


def domain_board(domain: str, catalog: Catalog = CATALOG) -> dashboard.Dashboard:
    kpis = {k.name: k for k in catalog.kpis}
    own = [k for k in catalog.kpis if k.domain == domain]
    banded = [k for k in own if k.kind in DETECTED_TOTAL_KINDS]
    flows = any(board_window(k) == WINDOW_VARIABLE for k in own)
    board = _board(
        board_uid(domain),
        f"kpi-pulse / {_domain_title(domain)}",
        f"Every {domain.replace('_', ' ')} KPI of the catalog for the selected business units "
        "and regions (exact across workers), then the detectors' expected bands per worker. "
        "Annotations: open anomaly alerts of these KPIs and stale sources.",
        domain,
    )
    board.variables(variables(window=flows, instance=bool(banded))).annotations(
        annotation_queries(own)
    )
    board.with_row(dashboard.Row("KPIs"))
    for kpi in own:
        for panel in value_panels(kpi, kpis):
            board.with_panel(panel)
    if banded:
        board.with_row(dashboard.Row("Detector bands on $instance").repeat("instance"))
        for kpi in banded:
            board.with_panel(band_panel(kpi))
    return board


def _service_panel(
    title: str, description: str, unit: str, expr: str, legend: str
) -> timeseries.Panel:
    return timeseries_panel(title, description, unit, [target(expr, legend, "A")])


def service_board() -> dashboard.Dashboard:
    rate = "$__rate_interval"
    board = _board(
        SERVICE_UID,
        "kpi-pulse / Service health",
        "Workers of job `pulse`: throughput, lag, rejects, rebalances, detector cost, "
        "freshness and guards.",
        "service",
    )
    board.variables(variables(window=False, instance=False))
    board.with_row(dashboard.Row("Now"))
    stats = [
        ("Workers up", "Scrape targets of job pulse that answer.", "short",
         'sum(up{job="pulse"})'),
        ("Events/s", "Valid events counted per second, all workers.", "short",
         f"sum(rate({names.EVENTS_PROCESSED.series}[{rate}]))"),
        ("Consumer lag", "Messages behind, all owned input partitions.", "short",
         f"sum({names.CONSUMER_LAG.series})"),
        ("Rejected/s", "Messages dead-lettered per second, all reasons.", "short",
         f"sum(rate({names.EVENTS_REJECTED.series}[{rate}]))"),
        ("Stale sources", "Sources judged stale by at least one worker.", "short",
         f"count(max by (source) ({names.DATA_STALE.series}) == 1) or vector(0)"),
        ("Watermark delay", "Wall-clock time minus the slowest worker's watermark.", "s",
         f"max(time() - {names.WATERMARK.series})"),
        ("Detector cost", "Share of a core spent in anomaly detection, all workers.",
         "percentunit", f"sum(rate({names.DETECTOR_SECONDS.series}[{rate}]))"),
        ("Open anomalies", "Series with an open anomaly alert, all workers.", "short",
         f"count({names.ANOMALY_ACTIVE.series} == 1) or vector(0)"),
    ]  # fmt: skip
    for title, description, unit, expr in stats:
        board.with_panel(stat_panel(title, description, unit, expr))
    throughput = [
        ("Throughput by worker", "Valid events counted per second.", "short",
         f"sum by (instance) (rate({names.EVENTS_PROCESSED.series}[{rate}]))", "{{instance}}"),
        ("Throughput by event type", "Valid events counted per second, all workers.", "short",
         f"sum by (type) (rate({names.EVENTS_PROCESSED.series}[{rate}]))", "{{type}}"),
        ("Consumer lag", "Messages behind the high-water mark per owned input partition.",
         "short", f"sum by (instance, topic, partition) ({names.CONSUMER_LAG.series})",
         "{{instance}} {{topic}}[{{partition}}]"),
        ("Rejected by reason", "Messages sent to the dead-letter topic per second.", "short",
         f"sum by (reason) (rate({names.EVENTS_REJECTED.series}[{rate}]))", "{{reason}}"),
        ("Rebalances", "Partition assignments received (a worker's first one included).",
         "short", f"sum by (instance) (increase({names.REBALANCES.series}[{rate}]))",
         "{{instance}}"),
        ("Workers up", "1 while the scrape of the worker succeeds.", "short",
         'up{job="pulse"}', "{{instance}}"),
    ]  # fmt: skip
    freshness = [
        ("Watermark delay", "Wall-clock time minus each worker's event-time watermark.", "s",
         f"time() - {names.WATERMARK.series}", "{{instance}}"),
        ("Age of the window shown", "Wall-clock time minus the end of the window instance the "
         "KPI gauges show, per worker and window; 0 while that window is still open (balances, "
         "cumulative and monthly windows). Workers far apart mix window instances in the "
         "summed KPIs.", "s",
         f"clamp_min(time() - {names.WINDOW_END.series}, 0)", "{{instance}} {{window}}"),
        ("Detector cost", "Seconds of anomaly detection per second: the share of a core.",
         "percentunit", f"sum by (instance) (rate({names.DETECTOR_SECONDS.series}[{rate}]))",
         "{{instance}}"),
        ("Data stale sources", "1 while a source is silent or behind beyond its usual gaps, "
         "as judged by any worker.", "short", f"max by (source) ({names.DATA_STALE.series})",
         "{{source}}"),
        ("Dimension values folded", "Events per second whose dimension value was folded into "
         "'other' by the cardinality limit.", "short",
         f"sum by (dimension) (rate({names.DIMENSION_VALUES_FOLDED.series}[{rate}]))",
         "{{dimension}}"),
        ("Dedupe evictions", "Event ids forgotten early per second (dedupe memory full): "
         "duplicates of those ids would count twice.", "short",
         f"sum by (instance) (rate({names.DEDUPE_EVICTIONS.series}[{rate}]))", "{{instance}}"),
    ]  # fmt: skip
    for row, panels in (
        ("Throughput and lag", throughput),
        ("Freshness, detection and guards", freshness),
    ):
        board.with_row(dashboard.Row(row))
        for title, description, unit, expr, legend in panels:
            board.with_panel(_service_panel(title, description, unit, expr, legend))
    return board


# Rendering ---------------------------------------------------------------------------------


def boards(catalog: Catalog = CATALOG) -> list[dashboard.Dashboard]:
    """Every board: overview, one per KPI domain with KPIs, service health."""
    domains = [d for d in DOMAINS if any(k.domain == d for k in catalog.kpis)]
    return [overview(catalog), *(domain_board(d, catalog) for d in domains), service_board()]


def render_dashboards(catalog: Catalog = CATALOG, currency: str = "EUR") -> dict[str, str]:
    """{`<uid>.json`: dashboard JSON}, deterministic (sorted keys, indent 2, trailing newline;
    panels numbered in order); money panels in `currency` (the reporting currency)."""
    files: dict[str, str] = {}
    money = currency_unit(currency)
    for builder in boards(catalog):
        board = builder.build()
        for number, panel in enumerate(board.panels or [], start=1):
            panel.id_val = number
            config = getattr(panel, "field_config", None)  # rows have none
            defaults = config.defaults if config is not None else None
            if defaults is not None and defaults.unit == UNITS["currency"]:
                defaults.unit = money
        text = json.dumps(board, cls=JSONEncoder, indent=2, sort_keys=True)
        files[f"{board.uid}.json"] = text + "\n"
    return dict(sorted(files.items()))
