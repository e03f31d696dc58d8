"""Restatements in the merge stage: a month already published final changes, and its
company-wide records are published again, as a single worker publishes them
(`streams.core.restatements`).

A worker that restates a month (a budget revision booked to it within `PULSE_RESTATEMENT_DAYS`)
publishes that month's partials again, final. The stage keeps each final period window
(`streams.core.compiler.PERIOD_WINDOWS`: `1mo`, and `fp`, `fq`, `fytd` with a fiscal
calendar) in its table until the horizon has passed, with what it published of each
series (`Published`: revision, as-reported value, last value); a partial arriving for such a
window replaces its source's part and the window is merged again: the series whose value
changed are published with their next revision and the value first published final.

Pure: the table entry's `published` field is plain JSON (the stage's Faust table holds it).
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from schemas.kpi_record import decimal_text
from streams.core.kpi_values import KpiValue

Published = dict[str, list[str | int | None]]
"""Per series (`kpi|k=v,...`): [revision, as-reported value, value, numerator, denominator]."""


def _series(value: KpiValue) -> str:
    return f"{value.kpi}|" + ",".join(f"{k}={v}" for k, v in value.labels)


def _text(number: Decimal | None) -> str | None:
    return None if number is None else decimal_text(number)


def _parts(value: KpiValue) -> list[str | None]:
    return [_text(value.value), _text(value.numerator), _text(value.denominator)]


def first_published(values: list[KpiValue]) -> Published:
    """What a window's first final publication was: revision 1 of each series."""
    return {_series(v): [1, _text(v.value), *_parts(v)] for v in values}


def restated(values: list[KpiValue], published: Published) -> tuple[list[KpiValue], Published]:
    """The window's series whose value changed since last published, each with its next
    revision and as-reported value (a series new to the window starts at 1), and what is then
    published."""
    changed: list[KpiValue] = []
    now = dict(published)
    for value in values:
        series = _series(value)
        before = now.get(series)
        if before is None:
            now[series] = [1, _text(value.value), *_parts(value)]
            changed.append(value)
            continue
        if before[2:] == _parts(value):
            continue
        revision = int(before[0] or 1) + 1
        as_reported = before[1]
        now[series] = [revision, as_reported, *_parts(value)]
        changed.append(
            replace(
                value,
                revision=revision,
                as_reported=None if as_reported is None else Decimal(str(as_reported)),
            )
        )
    return changed, now
