"""Detection state as bytes and back: what the merge stage keeps in its Faust table, so that a
restart resumes every series where it was instead of warming it up again.

The state of `AnomalyWatch` is plain dataclasses of this package (detectors, lifecycles,
incidents) holding numbers, strings, lists, dicts, tuples, sets, deques and Decimals. `encode`
turns such a graph into JSON with a small tagged form (`{"c": class, "v": fields}` for a
dataclass, `{"t": [...]}` for a tuple, `{"f": "nan"}` for a non-finite float, ...), `decode`
builds it back: exact, floats included (JSON floats round-trip), and an object referenced twice
(an incident in the open list and in the per-series index) comes back as one object.

Only dataclasses defined in `streams.detection` are built, without running their `__init__`
(a decoded detector is the one that was encoded, not a fresh one): nothing else can be named by
a record, so a record read from Kafka cannot make this module run anything. A field missing from
a record (state written by an older version) takes its default; a field the class no longer has
is ignored.

The split of a watch into records (`series_records`, `shared_record`, `restore`) follows what
changes together: one record per series (most change once per window instance of their own
window) and one for what the series share (open incidents, which alerts are open).
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import orjson

from streams.detection import (
    alerts,
    baseline,
    completeness,
    counts,
    detectors,
    incidents,
    shift,
    tails,
    watch,
)
from streams.detection.watch import AnomalyWatch, Series, SeriesKey
from streams.errors import PulseError

STATE_VERSION = 1


class StateError(PulseError, ValueError):
    """A detection state record that cannot be read (corrupt, or from an unknown version)."""


RENAMED = {"_Baseline": "Baseline"}
"""Classes by the names older records give them (`detectors._Baseline` became
`baseline.Baseline`)."""


MODULES = (alerts, baseline, completeness, counts, detectors, incidents, shift, tails, watch)
"""The modules whose dataclasses a record may name."""


def _classes() -> dict[str, type]:
    found: dict[str, type] = {}
    for module in MODULES:
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and dataclasses.is_dataclass(value)
                and value.__module__ == module.__name__
            ):
                found[value.__qualname__] = value
    found |= {old: found[new] for old, new in RENAMED.items()}
    return found


_CLASSES = _classes()


def _name(cls: type) -> str:
    return cls.__qualname__


_FIELDS: dict[type, tuple[str, ...]] = {}
_PLAIN = frozenset({float, int})
"""Element types of a list that JSON holds as they are (when finite: a sum tells)."""


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


class _Encoder:
    def __init__(self) -> None:
        self.seen: dict[int, int] = {}
        self.keep: list[object] = []  # ids stay unique while the encoder lives

    def __call__(self, value: object) -> Any:
        if value is None or isinstance(value, bool | int | str):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else {"f": repr(value)}
        if isinstance(value, list):
            if set(map(type, value)) <= _PLAIN and math.isfinite(sum(value)):
                return value  # the common case (seasonal profiles): no element needs a tag
            return [self(v) for v in value]
        return self._tagged(value)

    def _tagged(self, value: object) -> dict[str, Any]:
        if isinstance(value, Decimal):
            return {"n": str(value)}
        if isinstance(value, tuple):
            return {"t": [self(v) for v in value]}
        if isinstance(value, deque):
            return {"q": [self(v) for v in value], "m": value.maxlen}
        if isinstance(value, set | frozenset):
            items = sorted((self(v) for v in value), key=orjson.dumps)
            return {"fs" if isinstance(value, frozenset) else "s": items}
        if isinstance(value, dict):
            return {"d": [[self(k), self(v)] for k, v in value.items()]}
        return self._dataclass(value)

    def _dataclass(self, value: object) -> dict[str, Any]:
        cls = type(value)
        if not dataclasses.is_dataclass(value) or _CLASSES.get(_name(cls)) is not cls:
            raise StateError(f"detection state holds a {cls.__name__}, which is not recorded")
        ref = self.seen.get(id(value))
        if ref is not None:
            return {"r": ref}
        self.seen[id(value)] = ref = len(self.seen)
        self.keep.append(value)
        fields = {name: self(getattr(value, name)) for name in _field_names(cls)}
        return {"c": _name(cls), "i": ref, "v": fields}


class _Decoder:
    def __init__(self) -> None:
        self.made: dict[int, object] = {}
        self.tags: dict[str, Callable[[dict[str, Any]], object]] = {
            "c": self._dataclass,
            "r": self._reference,
            "f": lambda v: float(v["f"]),
            "n": lambda v: Decimal(v["n"]),
            "t": lambda v: tuple(self(x) for x in v["t"]),
            "q": lambda v: deque((self(x) for x in v["q"]), maxlen=v["m"]),
            "s": lambda v: {self(x) for x in v["s"]},
            "fs": lambda v: frozenset(self(x) for x in v["fs"]),
            "d": lambda v: {self(k): self(x) for k, x in v["d"]},
        }

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        tag = next((t for t in ("c", "r", "f", "n", "t", "q", "s", "fs", "d") if t in value), "")
        if not tag:
            raise StateError(f"unknown tag in detection state: {sorted(value)}")
        return self.tags[tag](value)

    def _reference(self, value: dict[str, Any]) -> object:
        try:
            return self.made[value["r"]]
        except KeyError:
            raise StateError(f"reference {value['r']} before its object") from None

    def _dataclass(self, value: dict[str, Any]) -> object:
        cls = _CLASSES.get(value["c"])
        if cls is None:
            raise StateError(f"detection state names an unknown class {value['c']!r}")
        obj: object = object.__new__(cls)
        self.made[value["i"]] = obj
        given = value["v"]
        for f in dataclasses.fields(cls):
            if f.name in given:
                field_value = self(given[f.name])
            elif f.default is not dataclasses.MISSING:
                field_value = f.default
            elif f.default_factory is not dataclasses.MISSING:
                field_value = f.default_factory()
            else:
                raise StateError(f"detection state of {value['c']} lacks {f.name!r}")
            object.__setattr__(obj, f.name, field_value)
        return obj


def encode(value: object) -> bytes:
    """`value` (a graph of this package's dataclasses and plain values) as JSON bytes."""
    return orjson.dumps({"version": STATE_VERSION, "state": _Encoder()(value)})


def decode(data: bytes) -> Any:
    """What `encode` was given; `StateError` if `data` is not such a record."""
    try:
        record = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise StateError(f"detection state is not JSON: {exc}") from None
    if not isinstance(record, dict) or record.get("version") != STATE_VERSION:
        version = record.get("version") if isinstance(record, dict) else None
        raise StateError(f"detection state of version {version!r}, not {STATE_VERSION}")
    try:
        return _Decoder()(record["state"])
    except (KeyError, TypeError, ValueError, RecursionError) as exc:
        if isinstance(exc, StateError):
            raise
        raise StateError(f"detection state is malformed: {exc!r}") from None


def series_name(key: SeriesKey) -> str:
    """The record key of one series: `kpi|window|k=v,k=v`."""
    kpi, window, labels = key
    return f"{kpi}|{window}|" + ",".join(f"{k}={v}" for k, v in labels)


def series_records(watch: AnomalyWatch, keys: Iterable[SeriesKey]) -> dict[SeriesKey, bytes]:
    """The record of each of `keys` the watch holds (a series it forgot is left out)."""
    return {key: encode((key, watch.series[key])) for key in keys if key in watch.series}


def shared_record(watch: AnomalyWatch) -> bytes:
    """What the series share: the open incidents, the open alerts, the sources' freshness."""
    return encode(watch.shared_state())


def restore(watch: AnomalyWatch, series: Iterable[bytes], shared: bytes | None) -> list[str]:
    """Load records into a fresh `watch`; the problems of the records it had to leave out
    (their series warm up again), one line each."""
    problems: list[str] = []
    loaded: dict[SeriesKey, Series] = {}
    for data in series:
        try:
            key, state = decode(data)
        except StateError as exc:
            problems.append(str(exc))
            continue
        if not isinstance(state, Series):
            problems.append(f"a series record holds a {type(state).__name__}")
            continue
        loaded[key] = state
    shared_state = None
    if shared is not None:
        try:
            shared_state = decode(shared)
        except StateError as exc:
            problems.append(f"shared state: {exc}")
    watch.load_state(loaded, shared_state)
    return problems
