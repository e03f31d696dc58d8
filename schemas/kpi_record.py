"""The `<prefix>.kpi` record: the value of one KPI window instance, published when the window
closes (`final: false`) and again when it is final (`final: true`, late events included); a
period restated after it was final is published again with the next `revision` and its
`as_reported` value (optional fields: records without them are revision 1).

Published by the workers (streams/kafka/kpi_topic.py writes exactly these fields); consumers are
warehouses, reports and other services. Times are Unix seconds. Values are decimal strings in
plain notation (every digit kept, no exponent), money in the reporting currency; they can be
negative (net revenue after refunds, a variance). Values are one worker's, over the partitions it
lists: add up records of the same key from the other workers. A ratio whose denominator is zero
on this worker has `"value": null` and its numerator and denominator.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

KPI_RECORD_VERSION = 1
"""Version of this record's shape, in its schema's `$id`."""

DECIMAL_TEXT = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?$"
"""A plain decimal string: optional minus, no exponent, no leading zero, ASCII digits."""

DecimalText = Annotated[str, Field(pattern=DECIMAL_TEXT)]
PartitionName = Annotated[str, Field(pattern=r"^.+\[[0-9]+\]$", description="topic[partition]")]


def decimal_text(value: Decimal) -> str:
    """`value` as `DecimalText`: `format(.., "f")`, since `str` writes 0E-10 and 1E+3."""
    return format(value, "f")


class KpiRecord(BaseModel):
    """One record of `<prefix>.kpi` (its key: KPI | window | start | dimensions)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    kpi: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="KPI name, as in the catalog.")
    window: str = Field(
        min_length=1,
        description="Window kind, e.g. 1m, 1h, 1d, 30d, 1mo, balance, cumulative; with a fiscal "
        "calendar fp, fq and fytd (a year to date carries the start and end of its period).",
    )
    window_start: int = Field(description="Start of the window instance, Unix seconds.")
    window_end: int = Field(description="End of the window instance (exclusive), Unix seconds.")
    dimensions: dict[str, str] = Field(description="Dimension values of the series.")
    value: DecimalText | None = Field(description="null: a ratio with a zero denominator here.")
    numerator: DecimalText | None = Field(description="A ratio's numerator; null for others.")
    denominator: DecimalText | None = Field(description="A ratio's denominator; null for others.")
    final: bool = Field(description="true once the allowed lateness has passed.")
    partitions: list[PartitionName] = Field(
        description="The input partitions this worker owned, whose events the value covers."
    )
    emitted_at: float = Field(description="Wall-clock time the record was produced.")
    revision: int = Field(
        default=1,
        ge=1,
        description="1 for a window's first publication; n > 1 for the n-th final value of a "
        "period (1mo, fp, fq, fytd) restated after it was final (absent in records of earlier "
        "versions: 1).",
    )
    as_reported: DecimalText | None = Field(
        default=None,
        description="With revision > 1: the value first published final (the as-reported "
        "figure); null otherwise.",
    )
