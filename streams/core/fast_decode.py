"""The short way for a valid event: msgspec decodes and checks it in one pass, and anything it
does not take goes the contract's way (orjson + pydantic, `streams.core.validation`).

pydantic stays the contract and the only source of rejection reasons: this path accepts a
*subset* of what the contract accepts, with the same values, and answers None for everything
else, valid or not. It is built from the contract's own JSON Schema (each event model's
`model_json_schema()`), never written by hand, so a field added to the contract is checked
here too, or refused at import (`ContractViolation`):

- the fields, which are required, and no unknown field (`forbid_unknown_fields`); `type`
  selects the model (a tagged union); a model's own `mode="after"` validators (required
  dimensions, at least one score) run on the decoded event, with the model's class variables
  (a model with another kind of validator is left to the contract's way);
- lengths and integer bounds by msgspec; the patterns of values that change with every event
  (timestamps, decimal strings) with Python's `re` as each is converted (`$` made `\\Z`:
  Python's `$` also matches before a final line feed, which the contract refuses; msgspec's own
  `pattern` costs twice a direct `search`, measured). Timestamps take a narrower pattern than
  the contract's (`T`, `Z`, at most six fraction digits: what
  `datetime.fromisoformat` reads as pydantic does); the contract's way takes the rest;
- the patterns of labels and codes (dimension values, currency codes, categories): each
  event type remembers the combinations of them found to match (a bounded set; they repeat),
  so an event's labels cost one lookup;
- a key repeated in one object (msgspec, like orjson, keeps the last silently): a message
  without a backslash has exactly one `":` per key, so it is compared with the keys the
  decoded event holds (an explicit `null` for an optional field counts as absent and sends the
  message the contract's way, as does any backslash or a space before a colon);
- decimal strings and integers become `Decimal`, timestamps aware `datetime`s.

The decoded events are msgspec Structs with the models' field names (`type` a class
attribute): the core reads events by attribute, never by model method.
`tests/unit/test_fast_decode.py` shows on generated valid and broken messages that whatever
this path takes, the contract takes with equal values.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from operator import attrgetter
from typing import Annotated, Any, Literal, Union, cast

import msgspec

from schemas import EVENT_MODELS, Envelope
from streams.errors import ContractViolation

_TIME_FORMS = (("[Tt]", "T"), ("(\\.[0-9]+)?", "(\\.[0-9]{1,6})?"), ("[Zz]", "Z"))
"""The contract's RFC 3339 pattern narrowed to what `datetime.fromisoformat` reads as pydantic
does (lower-case letters and a seventh fraction digit go the contract's way)."""
_BACKSLASH = ord("\\")
LABEL_CACHE = 4096
"""Most label combinations remembered per event type as valid (a few hundred in practice)."""

Values = Callable[[Any], tuple[object, ...]]


@dataclass(slots=True)
class _Shape:
    """What is checked and converted after msgspec, for one event type."""

    keys: int
    """Keys every valid message of the type has (required fields, with `dimensions`'s)."""
    values: Values
    """The label fields' values, then the other optional fields': one call per event. Every
    None among them is an absent optional field (a required one is never None)."""
    optional: int
    """How many optional fields `values` reads (each one set is one more key)."""
    labels: int
    """How many label fields `values` reads first."""
    patterns: tuple[re.Pattern[str], ...]
    """Each label field's pattern (an optional label may be None)."""
    known: set[tuple[object, ...]]
    """Label combinations found to match their patterns (at most `LABEL_CACHE`)."""
    converts: tuple[tuple[str, Callable[[str], object], Callable[[Any], object]], ...]
    """Each field to convert: its name, its pattern's `search` (strings only) and converter."""
    rules: tuple[Callable[[Any], object], ...]
    """The model's `mode="after"` validators (each raises `ValueError` for an invalid event)."""

    def finish(self, event: Any) -> bool:
        """Convert `event`'s fields and apply the model's rules; False if one refuses."""
        try:
            for name, search, convert in self.converts:
                value = getattr(event, name)
                if value is None:
                    continue
                if value.__class__ is str and search(value) is None:
                    return False
                setattr(event, name, convert(value))
            for rule in self.rules:
                rule(event)
        except ValueError:  # a 31st of February, a missing cost center: the contract says why
            return False
        return True

    def labels_match(self, labels: tuple[object, ...]) -> bool:
        for value, pattern in zip(labels, self.patterns, strict=True):
            if value is not None and not (isinstance(value, str) and pattern.search(value)):
                return False
        if len(self.known) < LABEL_CACHE:
            self.known.add(labels)
        return True


@dataclass(slots=True)
class _Fields:
    """One model's fields as the schema walk finds them (dotted paths inside `dimensions`)."""

    required: int = 0
    optional: list[str] = field(default_factory=list)
    labels: list[tuple[str, str]] = field(default_factory=list)
    """Paths of pattern-checked strings, with their patterns."""
    converts: list[tuple[str, str, Callable[[Any], object]]] = field(default_factory=list)
    """Top-level fields to convert: name, pattern of their strings, converter."""

    def converted(self, path: str) -> str:
        if "." in path:
            raise ContractViolation(f"{path}: a converted field inside an object")
        return path


def _pattern(schema: dict[str, Any]) -> str:
    pattern = str(schema["pattern"])
    if not (pattern.startswith("^") and pattern.endswith("$")):
        raise ContractViolation(f"an unanchored pattern: {pattern}")
    return pattern[:-1] + "\\Z"


def _time_pattern(schema: dict[str, Any]) -> str:
    pattern = _pattern(schema)
    for wide, narrow in _TIME_FORMS:
        if wide not in pattern:
            raise ContractViolation(f"the contract's date-time pattern changed: {pattern}")
        pattern = pattern.replace(wide, narrow)
    return pattern


def _type_of(path: str, schema: dict[str, Any], defs: dict[str, Any], fields: _Fields) -> Any:
    """The msgspec type of one property; what is checked after msgspec is noted in `fields`."""
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[1]
        return _struct(name, defs[name], defs, fields, prefix=f"{path}.")
    if "anyOf" in schema:
        forms = [form for form in schema["anyOf"] if form.get("type") != "null"]
        nullable = len(forms) < len(schema["anyOf"])
        if [form.get("type") for form in forms] == ["string", "number"]:  # a decimal
            text, number = forms
            fields.converts.append((fields.converted(path), _pattern(text), Decimal))
            bounds = msgspec.Meta(gt=number["exclusiveMinimum"], lt=number["exclusiveMaximum"])
            form: Any = Union[  # noqa: UP007 - a runtime type for msgspec
                str, Annotated[int, bounds]
            ]
        elif len(forms) == 1:
            form = _type_of(path, forms[0], defs, fields)
        else:
            raise ContractViolation(f"{path}: {schema}")
        return form | None if nullable else form
    if "const" in schema:
        return Literal[schema["const"]]
    kind = schema.get("type")
    if kind == "integer":
        bounds_of = {"ge": schema.get("minimum"), "le": schema.get("maximum")}
        return Annotated[int, msgspec.Meta(**{k: v for k, v in bounds_of.items() if v is not None})]
    if kind != "string":
        raise ContractViolation(f"{path}: {schema}")
    lengths = {"min_length": schema.get("minLength"), "max_length": schema.get("maxLength")}
    meta: dict[str, Any] = {k: v for k, v in lengths.items() if v is not None}
    if schema.get("format") == "date-time":
        time = (fields.converted(path), _time_pattern(schema), datetime.fromisoformat)
        fields.converts.append(time)
    elif "pattern" in schema:
        fields.labels.append((path, _pattern(schema)))
    return Annotated[str, msgspec.Meta(**meta)] if meta else str


def _struct(
    name: str,
    schema: dict[str, Any],
    defs: dict[str, Any],
    fields: _Fields,
    *,
    prefix: str = "",
    tag: str | None = None,
    namespace: dict[str, Any] | None = None,
) -> type[msgspec.Struct]:
    if schema.get("additionalProperties") is not False:
        raise ContractViolation(f"{name} takes unknown fields")
    required = set(schema.get("required", ()))
    members: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for member, prop in schema["properties"].items():
        if member == "type" and tag is not None:
            continue  # the tag: msgspec reads it to pick the struct
        kind = _type_of(prefix + member, prop, defs, fields)
        if member in required:
            fields.required += 1
            members.append((member, kind))
        elif "default" in prop and prop["default"] is None:
            fields.optional.append(prefix + member)
            members.append((member, kind, None))
        else:
            raise ContractViolation(f"{name}.{member}: optional without a None default")
    members.sort(key=len)  # required fields first, as msgspec wants
    if tag is None:
        return msgspec.defstruct(name, members, forbid_unknown_fields=True)
    fields.required += 1  # the `type` key
    return msgspec.defstruct(
        name,
        members,
        namespace={"type": tag, **(namespace or {})},  # msgspec keeps the tag aside
        forbid_unknown_fields=True,
        tag_field="type",
        tag=tag,
    )


def _values(paths: list[str]) -> Values:
    if not paths:
        return lambda _: ()
    getter = attrgetter(*paths)
    if len(paths) == 1:
        return lambda event: (getter(event),)
    return cast(Values, getter)


def _build() -> tuple[msgspec.json.Decoder[Any], dict[type, _Shape]]:
    shapes: dict[type, _Shape] = {}
    for event_type, model in EVENT_MODELS.items():
        validators = model.__pydantic_decorators__.model_validators.values()
        if any(validator.info.mode != "after" for validator in validators):
            continue  # a rule that sees the input, not the event: the contract's way
        schema = model.model_json_schema()
        fields = _Fields()
        struct = _struct(
            schema["title"],
            schema,
            schema.get("$defs", {}),
            fields,
            tag=event_type,
            namespace={name: getattr(model, name) for name in model.__class_vars__},
        )
        labels = [path for path, _ in fields.labels]
        others = [path for path in fields.optional if path not in labels]
        shapes[struct] = _Shape(
            keys=fields.required,
            values=_values(labels + others),
            optional=len(fields.optional),
            labels=len(labels),
            patterns=tuple(re.compile(pattern) for _, pattern in fields.labels),
            known=set(),
            converts=tuple(
                (name, re.compile(pattern).search, convert)
                for name, pattern, convert in fields.converts
            ),
            rules=tuple(validator.func for validator in validators),
        )
    union = Union[tuple(shapes)]  # type: ignore[valid-type]  # noqa: UP007
    return msgspec.json.Decoder(union), shapes


_DECODER, _SHAPES = _build()
FAST_TYPES: frozenset[str] = frozenset(cast(Any, struct).type for struct in _SHAPES)
"""The event types this path decodes (the others always go the contract's way)."""


def fast_decode(raw: bytes) -> Envelope | None:
    """The event of `raw` if this path can take it (then the contract takes it too, with equal
    values), else None: the caller goes the contract's way."""
    if _BACKSLASH in raw:  # an int: one memchr (a one-byte bytes needle costs ten times that)
        return None
    try:
        event = _DECODER.decode(raw)
    except msgspec.DecodeError:
        return None
    shape = _SHAPES[type(event)]
    values = shape.values(event)
    if raw.count(b'":') != shape.keys + shape.optional - values.count(None):
        return None  # a repeated key, an explicit null, a space before a colon
    labels = values[: shape.labels]
    if labels not in shape.known and not shape.labels_match(labels):
        return None
    return cast(Envelope, event) if shape.finish(event) else None
