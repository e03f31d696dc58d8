"""Grafana panels, variables and annotations for kpi-pulse boards (grafana-foundation-sdk).

The building blocks `streams.generate.dashboards` lays out: a KPI's value panels (exact across
workers),
its detector band panel, stat and time series panels with the catalog's units and thresholds,
the template variables every board shares and the anomaly / stale-data annotations. Every panel
queries the `${datasource}` variable. Pure: builds objects, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.builders.common import (
    GraphThresholdsStyleConfig,
    ReduceDataOptions,
    VizLegendOptions,
    VizTooltipOptions,
)
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.common import (
    BigValueColorMode,
    BigValueGraphMode,
    GraphThresholdsStyleMode,
    LegendDisplayMode,
    LegendPlacement,
    SortOrder,
    TooltipDisplayMode,
)

from streams.core.catalog import CATALOG, FLOW_WINDOWS, Kpi, Thresholds
from streams.export import names
from streams.export.names import BAND_FAMILIES, kpi_family
from streams.generate.queries import (
    FILTERED_DIMS,
    WINDOW_VARIABLE,
    anomaly_expr,
    band_expr,
    board_window,
    quantile_expr,
    value_expr,
)

DATASOURCE_UID = "pulse-prometheus"
"""The provisioned Prometheus data source (grafana/provisioning/datasources/prometheus.yml)."""
DEFAULT_WINDOW = "1h"
REVENUE = next(kpi_family(k).name for k in CATALOG.kpis if k.name == "revenue")
"""The family the business-unit and region variables read their values from."""
UNITS = {
    "currency": "currencyEUR",  # replaced by `currency_unit` of PULSE_REPORTING_CURRENCY
    "ratio": "percentunit",
    "count": "short",
    "days": "d",
    "seconds": "s",
    "score": "none",
}
"""Grafana unit of each catalog unit."""
GRAFANA_CURRENCIES = frozenset({
    "USD", "GBP", "EUR", "JPY", "RUB", "UAH", "BRL", "DKK", "ISK", "NOK", "SEK", "CZK",
    "CHF", "PLN", "ZAR", "INR", "KRW", "IDR", "PHP", "VND", "TRY", "MYR", "BGN", "ILS",
})  # fmt: skip
"""Currencies with a Grafana unit of their own (`currencyUSD`)."""


def currency_unit(code: str) -> str:
    """Grafana's unit for money in `code`; other currencies get the code as a suffix."""
    return f"currency{code}" if code in GRAFANA_CURRENCIES else f"suffix: {code}"


ACRONYMS = {
    "ar": "AR",
    "ap": "AP",
    "cogs": "COGS",
    "csat": "CSAT",
    "dio": "DIO",
    "dpo": "DPO",
    "dso": "DSO",
    "nps": "NPS",
    "opex": "OpEx",
    "roi": "ROI",
}
DS = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
PANEL_HEIGHT = 8


def kpi_title(kpi: Kpi) -> str:
    """`gross_margin_ratio` -> "Gross margin ratio", `dso_days` -> "DSO days"."""
    text = " ".join(ACRONYMS.get(word, word) for word in kpi.name.split("_"))
    return text[0].upper() + text[1:]


def target(expr: str, legend: str, ref: str) -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).range()


def legend_of(by: Sequence[str]) -> str:
    return " / ".join(f"{{{{{label}}}}}" for label in by) or "total"


def _thresholds(limits: Thresholds | None) -> dashboard.ThresholdsConfig:
    """Catalog thresholds as Grafana steps (red critical, orange warning, green fine);
    without any, one neutral step (Grafana's default turns values above 80 red)."""
    steps = [model.Threshold(None, "text")]
    if limits is not None:
        below = [(limits.critical_below, "red"), (limits.warning_below, "orange")]
        above = [(limits.warning_above, "orange"), (limits.critical_above, "red")]
        # Steps color values from their value up: below-bounds start red and end green.
        colors = [color for value, color in below if value is not None] + ["green"]
        steps = [model.Threshold(None, colors[0])]
        steps += [
            model.Threshold(float(value), colors[i + 1])
            for i, value in enumerate(v for v, _ in below if v is not None)
        ]
        steps += [
            model.Threshold(float(value), color) for value, color in above if value is not None
        ]
    return dashboard.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE).steps(steps)


def timeseries_panel(
    title: str,
    description: str,
    unit: str,
    targets: Sequence[prometheus.Dataquery],
    *,
    width: int = 12,
    thresholds: Thresholds | None = None,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DS)
        .unit(unit)
        .height(PANEL_HEIGHT)
        .span(width)
        .targets(list(targets))
        .thresholds(_thresholds(thresholds))
        .legend(
            VizLegendOptions()
            .display_mode(LegendDisplayMode.LIST)
            .placement(LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(VizTooltipOptions().mode(TooltipDisplayMode.MULTI).sort(SortOrder.DESCENDING))
    )
    if thresholds is not None:
        panel.thresholds_style(GraphThresholdsStyleConfig().mode(GraphThresholdsStyleMode.DASHED))
    return panel


def stat_panel(
    title: str, description: str, unit: str, expr: str, thresholds: Thresholds | None = None
) -> stat.Panel:
    color = BigValueColorMode.VALUE if thresholds is not None else BigValueColorMode.NONE
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DS)
        .unit(unit)
        .height(4)
        .span(3)
        .with_target(target(expr, "", "A"))
        .thresholds(_thresholds(thresholds))
        .color_mode(color)
        .graph_mode(BigValueGraphMode.AREA)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]))
    )


def merge_note(kpi: Kpi) -> str:
    if kpi.kind == "period_variance":
        return (
            "Exact across workers: sum(numerator) / sum(denominator). Each worker exports its "
            "OpEx less the budget it holds, over that budget (0 where another worker holds it); "
            "publish a cost center's budget_set events with one key so one worker holds it."
        )
    if kpi.denominator is not None:
        scale = "" if kpi.scale == 1 else f"{kpi.scale.normalize():f} x "
        return f"Exact across workers: {scale}sum(numerator) / sum(denominator)."
    if kpi.kind == "formula":
        return "Recomputed from its inputs' numerators and denominators summed over workers."
    return "Exact across workers: the sum of every worker's partial sums."


def window_note(kpi: Kpi) -> str:
    window = board_window(kpi)
    if window == WINDOW_VARIABLE:
        return "Each point is the value of the newest closed window (size: the window variable)."
    return f"Window `{window}`, as of the end of the newest closed business day or period."


def value_panels(kpi: Kpi, kpis: Mapping[str, Kpi]) -> list[timeseries.Panel]:
    """The KPI for the selected business units and regions (and per extra dimension)."""
    unit = UNITS[kpi.unit]
    title = kpi_title(kpi)
    if kpi.kind == "quantile":
        by = [d for d in kpi.dims if d in FILTERED_DIMS]
        return [
            timeseries_panel(
                f"{title} p{(Decimal(100) * q).normalize():f}",
                f"{kpi.description} Quantile {q}, one series per worker (instance): each "
                "worker's sketch covers only its partitions and sketches are not exported, so "
                f"quantiles cannot be merged across workers. {window_note(kpi)}",
                unit,
                [target(quantile_expr(kpi, q), f"{legend_of(by)} ({{{{instance}}}})", "A")],
            )
            for q in kpi.quantiles
        ]
    main = [d for d in kpi.dims if d in FILTERED_DIMS] or list(kpi.dims)
    panels = [
        timeseries_panel(
            f"{title} by {', '.join(d.replace('_', ' ') for d in main)}",
            f"{kpi.description} {merge_note(kpi)} {window_note(kpi)}",
            unit,
            [target(value_expr(kpi, kpis, main), legend_of(main), "A")],
            thresholds=kpi.thresholds,
        )
    ]
    for extra in (d for d in kpi.dims if d not in main):
        panels.append(
            timeseries_panel(
                f"{title} by {extra.replace('_', ' ')}",
                f"{kpi.description} Summed over the other dimensions of the selection. "
                f"{merge_note(kpi)} {window_note(kpi)}",
                unit,
                [target(value_expr(kpi, kpis, [extra]), legend_of([extra]), "A")],
            )
        )
    return panels


def _fixed_color(color: str) -> model.DynamicConfigValue:
    return model.DynamicConfigValue("color", {"mode": "fixed", "fixedColor": color})


def band_panel(kpi: Kpi) -> timeseries.Panel:
    """The detectors' view of the KPI's company total on one worker (`$instance`)."""
    window = board_window(kpi)
    shown = "the `$window` variable" if window == WINDOW_VARIABLE else f"`{window}`"
    panel = timeseries_panel(
        f"{kpi_title(kpi)}: expected band ({window}, company total) on $instance",
        f"What the detectors saw and expected for the company total of {kpi.name} (no "
        f"dimension labels) at window {shown}: observed value of the newest scored window, "
        "expected value and the band between lower and upper. One panel per worker: with "
        "several workers each one detects on the partial sums of the partitions it owns, so "
        "its band is for its share, not for the company value of the panels above.",
        UNITS[kpi.unit],
        [
            target(band_expr(family, kpi), legend, chr(ord("A") + i))
            for i, (legend, family) in enumerate(BAND_FAMILIES)
        ],
    )
    dash = {"fill": "dash", "dash": [10, 10]}
    return (
        panel.override_by_name("observed", [_fixed_color("blue")])
        .override_by_name(
            "expected",
            [_fixed_color("green"), model.DynamicConfigValue("custom.lineStyle", dash)],
        )
        .override_by_name(
            "lower",
            [_fixed_color("green"), model.DynamicConfigValue("custom.lineWidth", 0)],
        )
        .override_by_name(
            "upper",
            [
                _fixed_color("green"),
                model.DynamicConfigValue("custom.lineWidth", 0),
                model.DynamicConfigValue("custom.fillOpacity", 20),
                model.DynamicConfigValue("custom.fillBelowTo", "lower"),
            ],
        )
    )


# Variables and annotations -----------------------------------------------------------------


def _option(text: str | list[str], value: str | list[str]) -> model.VariableOption:
    return model.VariableOption(selected=True, text=text, value=value)


def _label_variable(name: str, label: str, query: str) -> dashboard.QueryVariable:
    return (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(DS)
        .query(query)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(_option(["All"], ["$__all"]))
    )


def variables(*, window: bool, instance: bool) -> list[Builder[model.VariableModel]]:
    """`datasource`, `business_unit`, `region`; `window` on boards with flow KPIs; `instance`
    (workers whose detector bands to show) on boards with band panels."""
    out: list[Builder[model.VariableModel]] = [
        dashboard.DatasourceVariable("datasource")
        .label("Data source")
        .type("prometheus")
        .current(_option("Prometheus", DATASOURCE_UID)),
        _label_variable(
            "business_unit", "Business unit", f"label_values({REVENUE}, business_unit)"
        ),
        _label_variable("region", "Region", f"label_values({REVENUE}, region)"),
    ]
    if window:
        out.append(
            dashboard.CustomVariable("window")
            .label("Window")
            .values(",".join(FLOW_WINDOWS))
            .current(_option(DEFAULT_WINDOW, DEFAULT_WINDOW))
            .options([model.VariableOption(w == DEFAULT_WINDOW, w, w) for w in FLOW_WINDOWS])
        )
    if instance:
        out.append(
            _label_variable(
                "instance", "Worker (bands)", f"label_values({names.EXPECTED.series}, instance)"
            )
        )
    return out


class _PrometheusAnnotation(model.AnnotationQuery):
    """The SDK's annotation model has no Prometheus options (title, tags, step)."""

    def __init__(self, name: str, expr: str, title: str, tags: str, color: str) -> None:
        super().__init__(name=name, datasource=DS, enable=True, icon_color=color, expr=expr)
        self.prometheus = {
            "step": "30s",
            "titleFormat": title,
            "tagKeys": tags,
            "textFormat": "",
            "useValueForTime": False,
        }

    def to_json(self) -> dict[str, object]:
        return {**super().to_json(), **self.prometheus}


class _Built(Builder[model.AnnotationQuery]):
    def __init__(self, built: model.AnnotationQuery) -> None:
        self._built = built

    def build(self) -> model.AnnotationQuery:
        return self._built


def annotation_queries(kpis: Sequence[Kpi]) -> list[Builder[model.AnnotationQuery]]:
    dims = sorted({d for k in kpis for d in k.dims})
    return [
        _Built(
            _PrometheusAnnotation(
                "Anomalies",
                anomaly_expr(kpis),
                "{{kpi}} anomaly ({{severity}}, window {{window}})",
                ",".join(["kpi", "window", "severity", *dims]),
                "red",
            )
        ),
        _Built(
            _PrometheusAnnotation(
                "Data stale",
                f"{names.DATA_STALE.series} == 1",
                "data stale: {{source}}",
                "source",
                "orange",
            )
        ),
    ]
