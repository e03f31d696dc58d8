"""Labelled incidents for the simulator: what goes wrong, where and when, as ground truth.

An `Incident` scales one KPI's raw quantity by `factor(t)` within [start, end) of event time, for
the events whose business unit and region it matches; a `silent_source` instead stops one event
type. `plan_incidents` draws a default schedule, `load_plan` reads one a person wrote (JSON), and
`write_ground_truth` / `read_ground_truth` keep the labels as CSV, to score a detector against.

Times are epoch seconds in UTC, whole seconds. Pure: stdlib and orjson only.
"""

from __future__ import annotations

import csv
import math
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from os import PathLike
from pathlib import Path
from typing import Any, Literal, TextIO, TypeGuard, get_args

import orjson

from streams.core.instants import parse_instant

__all__ = [
    "DIMENSION_KEYS",
    "GROUND_TRUTH_HEADER",
    "INCIDENT_KINDS",
    "KPI_TARGETS",
    "RATIO_TARGETS",
    "Incident",
    "IncidentKind",
    "load_plan",
    "plan_incidents",
    "read_ground_truth",
    "write_ground_truth",
]

IncidentKind = Literal["spike", "dip", "level_shift", "drift", "seasonality_break", "silent_source"]
INCIDENT_KINDS: tuple[IncidentKind, ...] = get_args(IncidentKind)
KPI_TARGETS = ("revenue", "cogs", "opex", "csat_ratio", "on_time_delivery_ratio")
PLAN_TARGETS = ("revenue", "cogs", "csat_ratio", "on_time_delivery_ratio")
"""What the default plan perturbs. Not OpEx: the simulated company posts a few expenses an hour
per business unit, one payroll posting worth ten of the others, so an hour's OpEx varies by
~75% and a change of the planned size cannot be told from noise at hourly grain (a plan file
can still target it)."""
RATIO_TARGETS = frozenset({"csat_ratio", "on_time_delivery_ratio"})  # they can only degrade
DIMENSION_KEYS = frozenset({"business_unit", "region"})
GROUND_TRUTH_HEADER = ("kind", "series", "target", "dimensions", "start", "end", "magnitude")

_HOUR, _DAY = 3600, 86_400
_DIMENSION_VALUE = re.compile(r"[\w.-]+")  # no '=', ';' or ',': the CSV and series use them
_EVENT_TYPE = re.compile(r"[a-z][a-z0-9_]*")
_PLAN_FIELDS = frozenset({"kind", "target", "start", "end", "duration", "magnitude", "dimensions"})

_Dimensions = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Incident:
    """One incident on `target`, a KPI of `KPI_TARGETS` (or an event type for `silent_source`),
    during [start, end), restricted to events whose dimensions match `dimensions` (sorted
    (name, value) pairs over business_unit and region; () = all).

    Raises ValueError naming the field on a bad value. Ratio KPIs only degrade: a `dip`, or a
    `level_shift` or `drift` with magnitude < 0. `magnitude` is ignored for `silent_source`.
    Start and end are whole seconds, so the ground truth CSV round-trips exactly; dimensions are
    stored sorted.
    """

    kind: IncidentKind
    target: str
    start: float
    end: float
    magnitude: float = 0.0
    dimensions: _Dimensions = ()

    def __post_init__(self) -> None:
        if self.kind not in INCIDENT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(INCIDENT_KINDS)}, got {self.kind!r}")
        for name in ("start", "end", "magnitude"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number, got {value!r}")
            if not math.isfinite(value) or (name != "magnitude" and value != int(value)):
                qualifier = "finite" if name == "magnitude" else "whole (epoch seconds)"
                raise ValueError(f"{name} must be {qualifier}, got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.end <= self.start:
            when = f"start {_rfc3339(self.start)}, end {_rfc3339(self.end)}"
            raise ValueError(f"end must be after start, got {when}")
        object.__setattr__(self, "dimensions", _checked_dimensions(self.dimensions))
        _check_target(self.kind, self.target)
        _check_magnitude(self.kind, self.target, self.magnitude)

    def factor(self, t: float) -> float:
        """The multiplier at event time `t` (epoch seconds): 1.0 outside [start, end)."""
        if not self.start <= t < self.end:
            return 1.0
        if self.kind == "dip":
            return 1.0 - self.magnitude
        if self.kind == "drift":  # from 1 at start towards 1 + magnitude at end
            return 1.0 + self.magnitude * (t - self.start) / (self.end - self.start)
        if self.kind == "seasonality_break":  # high at 00:00 UTC, low at 12:00 UTC if > 0
            return 1.0 + self.magnitude * math.cos(2 * math.pi * (t % _DAY) / _DAY)
        if self.kind == "silent_source":
            return 0.0
        return 1.0 + self.magnitude  # spike, level_shift

    def matches(self, dims: Mapping[str, str]) -> bool:
        """Whether an event with dimensions `dims` is affected: every restricting pair holds."""
        return all(dims.get(name) == value for name, value in self.dimensions)

    @property
    def series(self) -> str:
        """What a detector should flag: "revenue{region=emea}", "source:shipment_delivered"."""
        base = f"source:{self.target}" if self.kind == "silent_source" else self.target
        if not self.dimensions:
            return base
        return base + "{" + ",".join(f"{name}={value}" for name, value in self.dimensions) + "}"


def _checked_dimensions(dimensions: Iterable[tuple[str, str]]) -> _Dimensions:
    pairs: list[tuple[str, str]] = []
    for pair in dimensions:
        if len(pair) != 2 or pair[0] not in DIMENSION_KEYS:
            keys = " or ".join(sorted(DIMENSION_KEYS))
            raise ValueError(f"dimensions must be ({keys}, value) pairs, got {pair!r}")
        name, value = pair
        if not (isinstance(value, str) and _DIMENSION_VALUE.fullmatch(value)):
            raise ValueError(f"dimensions need a plain word as {name}, got {value!r}")
        pairs.append((name, value))
    if len({name for name, _ in pairs}) != len(pairs):
        raise ValueError(f"dimensions name a key twice: {pairs!r}")
    return tuple(sorted(pairs))


def _check_target(kind: IncidentKind, target: str) -> None:
    if kind != "silent_source":
        if target not in KPI_TARGETS:
            raise ValueError(f"target must be one of {', '.join(KPI_TARGETS)}, got {target!r}")
    elif not isinstance(target, str) or not _EVENT_TYPE.fullmatch(target) or target in KPI_TARGETS:
        raise ValueError(f"target of a silent_source must be an event type, got {target!r}")


def _check_magnitude(kind: IncidentKind, target: str, magnitude: float) -> None:
    allowed = {  # keeps every factor > 0 and != 1: an incident that changes nothing is no label
        "spike": (magnitude > 0, "> 0"),
        "dip": (0 < magnitude < 1, "within (0, 1)"),
        "level_shift": (magnitude > -1 and magnitude != 0, "> -1 and != 0"),
        "drift": (magnitude > -1 and magnitude != 0, "> -1 and != 0"),
        "seasonality_break": (-1 < magnitude < 1 and magnitude != 0, "within (-1, 1), != 0"),
        "silent_source": (True, ""),
    }
    ok, rule = allowed[kind]
    if not ok:
        raise ValueError(f"magnitude of a {kind} must be {rule}, got {magnitude!r}")
    if target in RATIO_TARGETS and not (
        kind == "dip" or (kind in ("level_shift", "drift") and magnitude < 0)
    ):
        raise ValueError(
            f"target {target} can only degrade (a dip, or a level_shift or drift with magnitude "
            f"< 0), got a {kind} with magnitude {magnitude}"
        )


_PLAN_HOURS: dict[IncidentKind, int] = {
    "spike": 2,
    "dip": 3,
    "level_shift": 24,
    "drift": 12,
    "seasonality_break": 24,
    "silent_source": 2,
}
_PLAN_DIMENSIONS: tuple[_Dimensions, ...] = (
    (("region", "emea"),),
    (("region", "amer"),),
    (("business_unit", "retail"),),
    (("business_unit", "retail"), ("region", "emea")),
    (("business_unit", "marketplace"),),
    (),
)
_PLAN_RATIO_DIMENSIONS: tuple[_Dimensions, ...] = ((), (("region", "emea"),), (("region", "amer"),))
_PLAN_SILENT_TYPES = (
    "order_placed",
    "shipment_delivered",
    "feedback_submitted",
    "expense_posted",
    "inventory_issued",
)


def plan_incidents(
    start: float, duration: float, seed: int, *, warmup: float, gap: float = 12 * 3600
) -> tuple[Incident, ...]:
    """A default schedule for a run of `duration` seconds from `start` (epoch seconds).

    Quiet for `warmup` seconds, then one incident after another, each starting at a whole hour
    (a seasonality_break at 00:00 UTC) at least `gap` seconds (+-25%) after the previous one
    ended, cycling through the kinds in `INCIDENT_KINDS` order and through `PLAN_TARGETS`. The
    schedule stops before the first incident that would run past start + duration.
    Deterministic in `seed`.
    """
    for name, value in (("start", start), ("duration", duration), ("warmup", warmup), ("gap", gap)):
        if not math.isfinite(value) or (name != "start" and value < 0):
            raise ValueError(f"{name} must be finite{'' if name == 'start' else ' and >= 0'}")
    rng = random.Random(seed)
    incidents: list[Incident] = []
    at = _ceil(start + warmup, _HOUR)
    while (incident := _planned(rng, len(incidents), at)).end <= start + duration:
        incidents.append(incident)
        at = _ceil(incident.end + gap * rng.uniform(0.75, 1.25), _HOUR)
    return tuple(incidents)


def _planned(rng: random.Random, index: int, at: int) -> Incident:
    kind = INCIDENT_KINDS[index % len(INCIDENT_KINDS)]
    if kind == "seasonality_break":
        at = _ceil(at, _DAY)
    end = at + _PLAN_HOURS[kind] * _HOUR
    if kind == "silent_source":
        silent = rng.choice(_PLAN_SILENT_TYPES)  # a source: one event type, everywhere
        return Incident(kind, silent, at, end, 0.0, ())
    target = PLAN_TARGETS[index % len(PLAN_TARGETS)]
    if target in RATIO_TARGETS and kind in ("spike", "seasonality_break"):  # would improve it
        target = rng.choice(("revenue", "cogs"))
    ratio = target in RATIO_TARGETS
    if kind == "dip":
        magnitude = 0.5 if ratio else 0.6  # a ratio dip: half of the good outcomes turn bad
    elif kind == "level_shift":
        magnitude = -0.5 if ratio else rng.choice((-0.5, 0.5))
    elif kind == "drift":
        magnitude = -0.6 if ratio else rng.choice((-0.6, 1.0))
    else:
        magnitude = 1.5 if kind == "spike" else 0.6
    dims = rng.choice(_PLAN_RATIO_DIMENSIONS if ratio else _PLAN_DIMENSIONS)
    return Incident(kind, target, at, end, magnitude, dims)


def _ceil(t: float, step: int) -> int:
    return math.ceil(t / step) * step


def write_ground_truth(incidents: Iterable[Incident], out: TextIO) -> None:
    """CSV of `incidents` under `GROUND_TRUTH_HEADER`: dimensions as "k=v;k=v", start and end in
    RFC 3339 UTC ("2024-03-01T12:00:00Z"), magnitude as Python writes floats (exact)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(GROUND_TRUTH_HEADER)
    for incident in incidents:
        writer.writerow(
            (
                incident.kind,
                incident.series,
                incident.target,
                ";".join(f"{name}={value}" for name, value in incident.dimensions),
                _rfc3339(incident.start),
                _rfc3339(incident.end),
                repr(incident.magnitude),
            )
        )


def read_ground_truth(inp: TextIO) -> tuple[Incident, ...]:
    """The incidents `write_ground_truth` wrote. Raises ValueError naming the line."""
    reader = csv.reader(inp)
    header = next(reader, None)
    if header is None or tuple(header) != GROUND_TRUTH_HEADER:
        raise ValueError(f"ground truth: line 1 must be {','.join(GROUND_TRUTH_HEADER)}")
    incidents: list[Incident] = []
    for row in reader:
        if not row:
            continue
        try:
            incidents.append(_ground_truth_row(row))
        except ValueError as exc:
            raise ValueError(f"ground truth line {reader.line_num}: {exc}") from exc
    return tuple(incidents)


def _ground_truth_row(row: list[str]) -> Incident:
    if len(row) != len(GROUND_TRUTH_HEADER):
        raise ValueError(f"expected {len(GROUND_TRUTH_HEADER)} fields, got {len(row)}")
    kind, series, target, dims, start, end, magnitude = row
    try:
        size = float(magnitude)
    except ValueError:
        raise ValueError(f"magnitude must be a number, got {magnitude!r}") from None
    pairs = tuple(_pair(text) for text in dims.split(";") if text)
    incident = Incident(
        _kind(kind), target, _parse_time(start, "start"), _parse_time(end, "end"), size, pairs
    )
    if incident.series != series:
        raise ValueError(f"series {series!r} does not match the other fields ({incident.series})")
    return incident


def _pair(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals:
        raise ValueError(f"dimensions must read name=value;name=value, got {text!r}")
    return name, value


def load_plan(path: str | PathLike[str]) -> tuple[Incident, ...]:
    """The incidents of a JSON plan: a list of objects with `kind`, `target`, `start` (RFC 3339
    with an offset), `end` (RFC 3339) or `duration` (seconds), `magnitude` and `dimensions`
    (an object, e.g. {"region": "emea"}; optional).

    Raises OSError when the file cannot be read, ValueError naming the file, the entry's index
    and the field on bad content.
    """
    try:
        data = orjson.loads(Path(path).read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON: {exc}") from exc
    if not isinstance(data, list):
        raise ValueError(f"{path}: a plan is a JSON list of incidents, got {type(data).__name__}")
    incidents: list[Incident] = []
    for index, entry in enumerate(data):
        try:
            incidents.append(_plan_entry(entry))
        except ValueError as exc:
            raise ValueError(f"{path}: incident {index}: {exc}") from exc
    return tuple(incidents)


def _plan_entry(entry: object) -> Incident:
    if not isinstance(entry, dict):
        raise ValueError(f"must be an object, got {type(entry).__name__}")
    unknown = sorted(set(entry) - _PLAN_FIELDS)
    if unknown:
        raise ValueError(
            f"unknown field {', '.join(unknown)} (known: {', '.join(sorted(_PLAN_FIELDS))})"
        )
    for name in ("kind", "target", "start"):
        if not isinstance(entry.get(name), str):
            raise ValueError(f"{name} must be a string, got {entry.get(name)!r}")
    start = _parse_time(entry["start"], "start")
    if ("end" in entry) == ("duration" in entry):
        raise ValueError("end: give either end or duration (seconds), not both or neither")
    if "end" in entry:
        end = _parse_time(entry["end"], "end")
    else:
        duration = _number(entry["duration"], "duration")
        if duration <= 0:
            raise ValueError(f"duration must be > 0 seconds, got {duration!r}")
        end = start + duration
    dims = entry.get("dimensions", {})
    if not isinstance(dims, dict):
        raise ValueError(f"dimensions must be an object like {{'region': 'emea'}}, got {dims!r}")
    magnitude = _number(entry.get("magnitude", 0.0), "magnitude")
    return Incident(_kind(entry["kind"]), entry["target"], start, end, magnitude, _pairs(dims))


def _pairs(dims: dict[Any, Any]) -> _Dimensions:
    if not all(isinstance(value, str) for value in dims.values()):
        raise ValueError(f"dimensions: values must be strings, got {dims!r}")
    return tuple(sorted(dims.items()))


def _is_kind(text: object) -> TypeGuard[IncidentKind]:
    return text in INCIDENT_KINDS


def _kind(text: object) -> IncidentKind:
    if not _is_kind(text):
        raise ValueError(f"kind must be one of {', '.join(INCIDENT_KINDS)}, got {text!r}")
    return text


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _parse_time(text: str, name: str) -> float:
    try:
        return parse_instant(text, None, epoch=False)
    except ValueError as exc:
        raise ValueError(
            f"{name} must be RFC 3339 with a UTC offset, e.g. 2024-03-01T12:00:00Z ({exc})"
        ) from None


def _rfc3339(t: float) -> str:
    """Whole epoch seconds as RFC 3339 UTC: 0.0 -> "1970-01-01T00:00:00Z"."""
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")
