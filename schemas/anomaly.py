"""The `<prefix>.anomalies` message: one alert opened or resolved, on a KPI series or a source.

Published by the workers (and written by nothing else); consumers are paging bridges, ticketing
and audit. Times are Unix seconds (event time), values in the KPI's unit (money in the reporting
currency). A `data_stale` alert names the `source` (an event type) instead of a KPI series.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ANOMALY_SCHEMA_VERSION: Literal[1] = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DimensionShare(_Strict):
    dimension: str
    value: str
    share: float = Field(ge=0, le=1, description="Part of the series' total deviation.")


class InputMove(_Strict):
    kpi: str = Field(description="An input KPI of a ratio or formula KPI.")
    observed: float
    expected: float
    change: float = Field(description="(observed - expected) / |expected|.")
    z: float = Field(description="Deviation in the input's own scales.")


class Explanation(_Strict):
    text: str = Field(description="One sentence for a person: what moved, where, and why.")
    dimensions: list[DimensionShare] = Field(
        default_factory=list, description="Dimension values carrying most of the deviation."
    )
    inputs: list[InputMove] = Field(
        default_factory=list, description="Inputs of a ratio or formula KPI, largest move first."
    )


class Anomaly(_Strict):
    """One message of `<prefix>.anomalies`."""

    schema_version: Literal[1] = ANOMALY_SCHEMA_VERSION
    alert: Literal["kpi_anomaly", "data_stale"]
    state: Literal["opened", "resolved"]
    severity: Literal["warning", "critical"]
    kpi: str | None = Field(description="KPI name (null for data_stale).")
    window: str | None = Field(description="Window size of the series, e.g. 1m, 1h, 1d.")
    dimensions: dict[str, str] = Field(description="Dimension values of the series.")
    source: str | None = Field(description="The stale source (an event type) for data_stale.")
    window_start: float | None = Field(description="Start of the window instance judged.")
    window_end: float | None
    observed: float | None = Field(
        description="KPI value; for data_stale, the time of the newest event."
    )
    expected: float | None
    lower: float | None = Field(description="Lower edge of the expected band.")
    upper: float | None = Field(description="Upper edge of the expected band.")
    score: float = Field(ge=0, le=1, description="Anomaly score; 0.5 is the band's edge.")
    started_at: float = Field(description="Start of the first anomalous window (or silence).")
    at: float = Field(description="Event time the transition was decided at.")
    emitted_at: float = Field(description="Wall-clock time the message was produced.")
    explanation: Explanation | None = Field(
        description="Set when an alert opens, and when it resolves as a new level accepted, for "
        "lack of values to judge, or with its incident."
    )
    incident: str | None = Field(
        default=None,
        description="The incident a KPI alert belongs to: its root series and start, e.g. "
        "revenue{region=emea}[1m]@1767225600 (null for data_stale).",
    )
    role: Literal["root", "related"] | None = Field(
        default=None,
        description="root: the alert that pages for its incident; related: opened with it, "
        "listed, does not page on its own (null for data_stale).",
    )
