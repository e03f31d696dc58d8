"""The core's configuration, from the settings."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from streams.core import CATALOG, Catalog, FxTable, StateConfig, Windows, compile_catalog
from streams.core.cardinality import CardinalityGuard
from streams.settings import Settings


def state_config(settings: Settings, catalog_data: Catalog = CATALOG) -> StateConfig:
    """The core's configuration from the settings; compiles (and so checks) the KPI catalog
    (`catalog_data`: the real one but in `pulse bench --catalog`)."""
    catalog = compile_catalog(catalog_data, fiscal=bool(settings.fiscal_calendar))
    return StateConfig(
        catalog=catalog,
        windows=Windows.for_timezone(
            ZoneInfo(settings.business_timezone),
            settings.restatement_days,
            settings.fiscal_calendar,
        ),
        watermark_delay=settings.watermark_delay_seconds,
        allowed_lateness=settings.allowed_lateness_seconds,
        dedupe_max_entries=settings.dedupe_max_entries,
        retained_windows=settings.retained_windows,
        fx=FxTable(settings.reporting_currency, settings.fx_rates),
        guard=CardinalityGuard.for_catalog(
            catalog,
            settings.max_dimension_values,
            max_combinations=settings.max_series_per_kpi,
            max_series=settings.kpi_series_budget,
        ),
        source_idle=settings.source_idle_seconds,
        join_max_entries=settings.join_max_entries,
        restatement_alert_change=settings.restatement_alert_change,
    )
