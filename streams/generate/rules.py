"""Prometheus recording and alert rules, generated from the KPI catalog (`pulse generate`).

Recording rules put the workers back together. Every worker exports partial sums for the
partitions it owns, so a KPI is only whole once summed across workers:
- `kpi:<family>:sum`: flows and balances summed over workers, all dimensions kept;
- `kpi:<family>:ratio`: ratio KPIs recomputed as scale * sum(numerator) / sum(denominator);
- `kpi:<family>:formula`: formula KPIs (cash conversion cycle) from the recorded inputs;
- `kpi_total:…`: the same for the whole company (summed over every dimension), per window.
Quantile KPIs do not add up across workers and are not recorded. `<family>` is the KPI's
exported family (`streams.export.names.kpi_family`: `pulse_revenue`, `pulse_dso_seconds`).

Alert rules:
- `PulseKpiAnomaly`, one rule per KPI: a worker's detectors hold an alert open on a series
  (`pulse_kpi_anomaly_active`); the alert's value is the observed value, its description
  quotes the expected band; labels `incident` and `incident_role` (root or related) say which
  incident it belongs to (`streams/detection/incidents.py`): a related alert does not page (the
  rule leaves it out; Alertmanager also inhibits it under its root).
- `PulseKpiThreshold`: the catalog's static thresholds on the recorded daily/monthly values.
- Service: `PulseWorkerDown`, `PulseConsumerLagGrowing`, `PulseDeadLetterRateHigh`,
  `PulsePeriodRestated`, `PulseDataStale`.
Every alert carries `severity`, `summary`, `description`, `dashboard` and `runbook_url`
(a section of docs/runbook.md named after the alert).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import yaml

from streams.core.catalog import CATALOG, FLOW_WINDOWS, RATIO_KINDS, Catalog, Kpi
from streams.detection.watch import STATIC_WINDOWS
from streams.export import names
from streams.export.names import NOT_WORKER, kpi_family
from streams.generate.dashboards import SERVICE_UID, board_uid

RECORDING_FILE = "pulse-recording.rules.yml"
ALERTS_FILE = "pulse-alerts.rules.yml"
WORKERS = "instance, job"
"""Labels that tell workers apart; summing `without` them puts the partial sums together."""
ADDITIVE_KINDS = frozenset({"flow", "balance"})

ANOMALY_FOR = "30s"
"""The worker already debounces (two points to open, hysteresis, cooldown); `for` only asks
that two scrapes agree."""
ANOMALY_KEEP_FIRING = "1m"
"""A failed scrape or two must not resolve an open anomaly and page again a minute later."""
THRESHOLD_FOR = "5m"
"""Thresholds judge recorded sums across workers: while one restarts, its partial sums are
missing for a while and a ratio can cross a line it is not really crossing."""
THRESHOLD_KEEP_FIRING = "10m"

VALUE_FORMAT = {
    "currency": '{{ printf "%.2f" $value }}',
    "count": '{{ printf "%.0f" $value }}',
    "ratio": "{{ humanizePercentage $value }}",
    "days": "{{ humanizeDuration $value }}",  # exported in seconds
    "seconds": "{{ humanizeDuration $value }}",
    "score": '{{ printf "%.1f" $value }}',
}
"""How an alert quotes a value of each unit (Prometheus template syntax)."""


@dataclass(frozen=True)
class Links:
    """Where alerts point: Grafana (the docker-compose one by default) and the runbook."""

    grafana: str = "http://localhost:3000"
    runbook: str = "docs/runbook.md"


DEFAULT_LINKS = Links()


def render_rules(catalog: Catalog = CATALOG, links: Links = DEFAULT_LINKS) -> dict[str, str]:
    """File name → YAML text of the recording and the alert rules."""
    return {
        RECORDING_FILE: _dump({"groups": [_recording_group(catalog)]}),
        ALERTS_FILE: _dump(
            {
                "groups": [
                    _anomaly_group(catalog, links),
                    _threshold_group(catalog, links),
                    _service_group(links),
                ]
            }
        ),
    }


def recorded_name(kpi: Kpi, total: bool = False) -> str | None:
    """The recording rule that holds `kpi` summed across workers (None: not recorded)."""
    level = "kpi_total" if total else "kpi"
    family = kpi_family(kpi).name
    if kpi.kind in ADDITIVE_KINDS:
        return f"{level}:{family}:sum"
    if kpi.kind in RATIO_KINDS:
        return f"{level}:{family}:ratio"
    if kpi.kind == "formula":
        return f"{level}:{family}:formula"
    return None


def _recording_group(catalog: Catalog) -> dict[str, Any]:
    rules: list[dict[str, str]] = []
    by_name = {k.name: k for k in catalog.kpis}
    for kpi in catalog.kpis:
        for total in (False, True):
            record = recorded_name(kpi, total)
            if record is None:
                continue
            keep = "by (window)" if total else f"without ({WORKERS})"
            family = kpi_family(kpi)
            only = f"{{{NOT_WORKER}}}"  # the stage's values, or the workers' without one
            if kpi.kind in ADDITIVE_KINDS:
                expr = f"sum {keep} ({family.name}{only})"
            elif kpi.kind in RATIO_KINDS:
                scale = "" if family.scale == 1 else f"{_number(family.scale)} * "
                expr = (
                    f"{scale}sum {keep} ({family.numerator}{only})\n"
                    f"  / (sum {keep} ({family.denominator}{only}) != 0)"
                )
            else:
                expr = _linear(
                    {
                        recorded_name(by_name[ref], total) or ref: c
                        for ref, c in kpi.numerator.items()
                    }
                )
            rules.append({"record": record, "expr": expr})
    return {"name": "pulse-kpi-recording", "rules": rules}


def _linear(terms: dict[str, int]) -> str:
    """`a + b - c` from {a: 1, b: 1, c: -1} (PromQL matches the terms on identical labels)."""
    text = ""
    for name, coefficient in terms.items():
        factor = "" if abs(coefficient) == 1 else f"{abs(coefficient)} * "
        sign = "-" if coefficient < 0 else "+"
        text += f" {sign} {factor}{name}" if text else f"{sign.strip('+')}{factor}{name}"
    return text


def _anomaly_group(catalog: Catalog, links: Links) -> dict[str, Any]:
    rules = []
    for kpi in catalog.kpis:
        labels = _series_labels(kpi)
        where = "".join(f"{{{{ with $labels.{d} }}}} {d}={{{{ . }}}}{{{{ end }}}}" for d in labels)
        band = " to ".join(
            _query_value(edge.name, kpi, labels)
            for edge in (names.EXPECTED_LOWER, names.EXPECTED_UPPER)
        )
        rules.append(
            {
                "alert": "PulseKpiAnomaly",
                "expr": (
                    f'{names.OBSERVED.series}{{kpi="{kpi.name}"}}\n'
                    "  * ignoring (severity, incident, incident_role)\n"
                    "    group_left (severity, incident, incident_role)\n"
                    f'  ({names.ANOMALY_ACTIVE.series}{{kpi="{kpi.name}", '
                    'incident_role!="related"} == 1)'
                ),
                "for": ANOMALY_FOR,
                "keep_firing_for": ANOMALY_KEEP_FIRING,
                "labels": {"kpi": kpi.name, "domain": kpi.domain},
                "annotations": {
                    "summary": (
                        f"{kpi.label} ({{{{ $labels.window }}}}){where} "
                        "is outside its expected band"
                    ),
                    "description": (
                        f"{kpi.label} ({{{{ $labels.window }}}}){where} is "
                        f"{VALUE_FORMAT[kpi.unit]}; expected {band} "
                        "(worker {{ $labels.instance }}; the anomaly topic carries the "
                        "explanation)."
                    ),
                    "dashboard": _board_link(links, kpi, labels),
                    "runbook_url": f"{links.runbook}#pulsekpianomaly",
                },
            }
        )
    return {"name": "pulse-kpi-anomalies", "rules": rules}


def _series_labels(kpi: Kpi) -> tuple[str, ...]:
    return (*kpi.dims, *(("quantile",) if kpi.kind == "quantile" else ()))


def _query_value(family: str, kpi: Kpi, labels: tuple[str, ...]) -> str:
    """Template text quoting `family` for the alert's own series (absent labels match "")."""
    names = ("window", "instance", *labels)
    selector = ",".join([f'kpi="{kpi.name}"', *(f'{n}="%s"' for n in names)])
    args = " ".join(f"$labels.{n}" for n in names)
    shown = VALUE_FORMAT[kpi.unit].replace("$value", "(. | first | value)")
    return f"{{{{ with printf `{family}{{{selector}}}` {args} | query }}}}{shown}{{{{ end }}}}"


def _board_link(links: Links, kpi: Kpi, labels: tuple[str, ...]) -> str:
    variables = "".join(
        f"{{{{ with $labels.{d} }}}}&var-{d}={{{{ . }}}}{{{{ end }}}}"
        for d in labels
        if d in ("business_unit", "region")
    )
    flows = set(kpi.windows) & set(FLOW_WINDOWS)
    window = "?var-window={{ $labels.window }}" if flows else "?orgId=1"
    return f"{links.grafana}/d/{board_uid(kpi.domain)}{window}{variables}"


def _threshold_group(catalog: Catalog, links: Links) -> dict[str, Any]:
    rules = []
    for kpi in catalog.kpis:
        if kpi.thresholds is None:
            continue
        record = recorded_name(kpi)
        assert record is not None, f"{kpi.name}: thresholds need a recorded KPI"
        windows = "|".join(w for w in kpi.windows if w in STATIC_WINDOWS)
        where = "".join(
            f"{{{{ with $labels.{d} }}}} {d}={{{{ . }}}}{{{{ end }}}}" for d in kpi.dims
        )
        for severity, bound in _bounds(kpi):
            op, limit = bound
            side = "below" if op == "<" else "above"
            rules.append(
                {
                    "alert": "PulseKpiThreshold",
                    "expr": f'{record}{{window=~"{windows}"}} {op} '
                    f"{_number(limit * kpi_family(kpi).factor)}",
                    "for": THRESHOLD_FOR,
                    "keep_firing_for": THRESHOLD_KEEP_FIRING,
                    "labels": {"severity": severity, "kpi": kpi.name, "domain": kpi.domain},
                    "annotations": {
                        "summary": f"{kpi.label} ({{{{ $labels.window }}}}){where} is {side} "
                        f"its {severity} threshold",
                        "description": f"{kpi.label} ({{{{ $labels.window }}}}){where} is "
                        f"{VALUE_FORMAT[kpi.unit]}, {side} the {severity} threshold of "
                        f"{_shown(kpi, limit)} (all workers summed).",
                        "dashboard": _board_link(links, kpi, kpi.dims),
                        "runbook_url": f"{links.runbook}#pulsekpithreshold",
                    },
                }
            )
    return {"name": "pulse-kpi-thresholds", "rules": rules}


def _bounds(kpi: Kpi) -> Iterator[tuple[str, tuple[str, Decimal]]]:
    t = kpi.thresholds
    assert t is not None
    for severity, below, above in (
        ("warning", t.warning_below, t.warning_above),
        ("critical", t.critical_below, t.critical_above),
    ):
        if below is not None:
            yield severity, ("<", below)
        if above is not None:
            yield severity, (">", above)


def _shown(kpi: Kpi, limit: Decimal) -> str:
    return f"{_number(limit * 100)}%" if kpi.unit == "ratio" else _number(limit)


def _number(value: Decimal) -> str:
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _service_group(links: Links) -> dict[str, Any]:
    board = f"{links.grafana}/d/{SERVICE_UID}"

    def rule(
        alert: str,
        expr: str,
        *,
        for_: str,
        keep: str,
        severity: str,
        summary: str,
        description: str,
    ) -> dict[str, Any]:
        return {
            "alert": alert,
            "expr": expr,
            "for": for_,
            "keep_firing_for": keep,
            "labels": {"severity": severity},
            "annotations": {
                "summary": summary,
                "description": description,
                "dashboard": board,
                "runbook_url": f"{links.runbook}#{alert.lower()}",
            },
        }

    rejected = f"sum by (instance) (rate({names.EVENTS_REJECTED.series}[5m]))"
    processed = f"sum by (instance) (rate({names.EVENTS_PROCESSED.series}[5m]))"
    share = f"{rejected}\n  / ({rejected} + {processed})"
    lag = f"sum by (instance, topic) ({names.CONSUMER_LAG.series})"
    return {
        "name": "pulse-service",
        "rules": [
            rule(
                "PulseWorkerDown",
                'up{job="pulse"} == 0',
                for_="1m",
                keep="2m",
                severity="critical",
                summary="kpi-pulse worker {{ $labels.instance }} is down",
                description=(
                    "Prometheus cannot scrape {{ $labels.instance }} for a minute: its partitions "
                    "are not counted until a worker takes them over, and summed KPIs are partial."
                ),
            ),
            rule(
                "PulseConsumerLagGrowing",
                f"{lag} > 10000\n  and sum by (instance, topic) "
                f"(delta({names.CONSUMER_LAG.series}[10m])) > 0",
                for_="10m",
                keep="5m",
                severity="warning",
                summary=(
                    "kpi-pulse worker {{ $labels.instance }} is falling behind on {{ $labels.topic "
                    "}}"
                ),
                description=(
                    "{{ $labels.instance }} is {{ $value }} messages behind on {{ $labels.topic }} "
                    "and the lag has grown for 10 minutes: KPIs are late."
                ),
            ),
            rule(
                "PulseDeadLetterRateHigh",
                f"{share} > 0.05",
                for_="10m",
                keep="10m",
                severity="warning",
                summary=(
                    "{{ $labels.instance }} dead-letters {{ humanizePercentage $value }} of its "
                    "input"
                ),
                description=(
                    "{{ humanizePercentage $value }} of the messages {{ $labels.instance }} read "
                    "in the last 5 minutes went to the dead-letter topic (above 5%): an upstream "
                    "system is publishing events that break the contract."
                ),
            ),
            rule(
                "PulseDeadLetterRateHigh",
                f"{share} > 0.25",
                for_="5m",
                keep="10m",
                severity="critical",
                summary=(
                    "{{ $labels.instance }} dead-letters {{ humanizePercentage $value }} of its "
                    "input"
                ),
                description=(
                    "{{ humanizePercentage $value }} of the messages {{ $labels.instance }} read "
                    "in the last 5 minutes went to the dead-letter topic (above 25%); the worker "
                    "stops itself past PULSE_MAX_BAD_RATIO."
                ),
            ),
            rule(
                "PulsePeriodRestated",
                f'sum by (kpi) (increase({names.RESTATEMENTS.series}{{material="true"}}[1h])) > 0',
                for_="0m",
                keep="1h",
                severity="warning",
                summary="A closed period of {{ $labels.kpi }} was restated",
                description=(
                    "Records of {{ $labels.kpi }} for a period already final were published "
                    "again in the last hour with a value more than "
                    "PULSE_RESTATEMENT_ALERT_CHANGE away from the one first reported (a "
                    "correction booked after close, e.g. a budget revision)."
                ),
            ),
            rule(
                "PulseDataStale",
                f"max by (source) ({names.DATA_STALE.series}) == 1",
                for_="1m",
                keep="5m",
                severity="warning",
                summary="No {{ $labels.source }} events for longer than usual",
                description=(
                    "Source {{ $labels.source }} has been silent (or behind) beyond 3x its usual "
                    "gaps. The KPIs it feeds are incomplete; their anomaly alerts are held until "
                    "it is back."
                ),
            ),
        ],
    }


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings, so PromQL reads as written; templates stay on one
    line."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def _dump(document: dict[str, Any]) -> str:
    header = "# Generated by `pulse generate` from streams/core/catalog.py; do not edit.\n"
    return header + yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=4096)
