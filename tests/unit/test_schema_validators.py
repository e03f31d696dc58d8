"""A publisher validating with the JSON Schema gets the service's answer: ajv (strict mode, the
JavaScript validator) and python-jsonschema agree with the service's own pydantic validation on
every message of the simulator (valid) and of the hostile set (streams/tools/hostile.py), and
the schema files compile in ajv's strict mode.

What the schema cannot say is listed, and checked to be all that differs from the worker's full
answer (`decode_event`): repeated JSON keys, an implausible `occurred_at` (before 2000 or in the
future), oversize, and whatever needs other messages (duplicates, lateness).

ajv comes from `make schema-tools` (deploy/ajv/, installed with npm from its lock file).
"""

from __future__ import annotations

import functools
import re
import subprocess
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from pydantic import ValidationError

from schemas import EVENT_TYPES, event_adapter
from streams.core import ValidationLimits, decode_event
from streams.errors import InvalidEvent
from streams.tools.hostile import HostileConfig, hostile_messages
from streams.tools.simulator import SimulationConfig, simulate

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "schemas/json"
AJV_DIR = REPO / "deploy/ajv"
AJV = AJV_DIR / "node_modules/.bin/ajv"
AJV_OPTIONS = ("--spec=draft2020", "--strict=true", "-c", "ajv-formats")
"""Draft 2020-12, strict mode (unknown keywords and formats are errors), formats checked."""
NOW = datetime(2026, 1, 6, tzinfo=UTC).timestamp()
"""The worker's clock for the full check: after every simulated event of the sets below."""
SCHEMA_BLIND = {"timestamp_out_of_range", "oversized", "repeated_key"}
"""What the worker refuses that no JSON Schema can say (or says only with a clock)."""


def ajv() -> Path:
    if not AJV.is_file():
        pytest.fail("ajv not found: `make schema-tools` installs it into deploy/ajv/node_modules")
    return AJV


def ajv_run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ajv; its output goes through files, since Node drops what is still queued for a pipe
    when ajv-cli calls `process.exit` (hundreds of verdicts were lost that way)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        done = subprocess.run(
            [str(ajv()), *args, *AJV_OPTIONS],
            cwd=AJV_DIR,  # where `-c ajv-formats` is found
            stdout=out,
            stderr=err,
            check=False,
            timeout=300,
        )
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(done.args, done.returncode, out.read(), err.read())


def ajv_verdicts(schema: Path, documents: list[bytes], folder: Path) -> list[bool]:
    """ajv's verdict on each document, as a publisher's `ajv validate` gives it."""
    folder.mkdir()
    paths = []
    for index, document in enumerate(documents):
        path = folder / f"{index:05d}.json"
        path.write_bytes(document)
        paths.append(path)
    done = ajv_run("validate", "--errors=json", "-s", str(schema), "-d", f"{folder}/*.json")
    verdicts: dict[str, bool] = {}
    for line in (done.stdout + done.stderr).splitlines():
        name, _, verdict = line.rpartition(" ")
        if verdict in {"valid", "invalid"} and name.startswith(str(folder)):
            verdicts[name] = verdict == "valid"
    missing = [p for p in paths if str(p) not in verdicts]
    assert not missing, f"ajv gave no verdict on {len(missing)} files: {done.stderr[-2000:]}"
    return [verdicts[str(p)] for p in paths]


def pydantic_accepts(document: bytes) -> bool:
    """The service's own validation of a decoded message (`decode_event` calls the same)."""
    try:
        event_adapter.validate_python(orjson.loads(document))
    except ValidationError:
        return False
    return True


def worker_answer(document: bytes) -> str | None:
    """`decode_event`'s reason (None: accepted); a repeated key gets a name of its own."""
    try:
        decode_event(document, ValidationLimits(), NOW)
    except InvalidEvent as exc:
        if exc.reason == "schema_violation" and "appears more than once" in str(exc):
            return "repeated_key"
        return exc.reason
    return None


def decodable(value: bytes | None) -> bool:
    """A JSON document at all (else no JSON validator is asked; the worker says undecodable)."""
    if not value:
        return False
    try:
        orjson.loads(value)
    except orjson.JSONDecodeError:
        return False
    return True


def simulated_valid(per_type: int) -> list[bytes]:
    """Up to `per_type` events of each type from a simulated day, in order; every type, since
    the rare ones (a budget, an FX rate) come within the first ~10,000 events at this rate."""
    start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    config = SimulationConfig(start=start, duration=86_400.0, bad_ratio=0.0, rate=0.2)
    kept: Counter[str] = Counter()
    messages = []
    for message in simulate(config):
        event_type = orjson.loads(message.value)["type"]
        if kept[event_type] < per_type:
            kept[event_type] += 1
            messages.append(message.value)
        if len(kept) == len(EVENT_TYPES) and min(kept.values()) >= 3:
            break
    return messages


@functools.cache
def hostile_set() -> list[tuple[str, bytes | None]]:
    """(kind[/variant], value) of every hostile message in a run of 3,000, and the simulator's
    own bad messages; JSON ones are validated below, the others checked as undecodable."""
    config = HostileConfig(messages=3000, hostile_ratio=0.6)
    found = [
        (f"{m.kind}/{m.variant}" if m.variant else m.kind, m.value)
        for m in hostile_messages(config)
        if m.kind != "valid"
    ]
    start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    simulated = SimulationConfig(start=start, duration=60.0, bad_ratio=0.2)
    found += [(f"simulator/{m.bad_kind}", m.value) for m in simulate(simulated) if m.bad_kind]
    return found


@pytest.fixture(scope="module")
def python_validator() -> Draft202012Validator:
    schema = orjson.loads((SCHEMAS / "event.schema.json").read_bytes())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def python_accepts(validator: Draft202012Validator, document: bytes) -> bool:
    """python-jsonschema's verdict. On JSON nested ~1,000 deep (orjson reads up to 1,024) it
    raises RecursionError (writing its error message): a refusal, as the publisher sees it."""
    try:
        return validator.is_valid(orjson.loads(document))
    except RecursionError:
        return False


def test_every_schema_compiles_in_ajv_strict_mode():
    names = sorted(p.name for p in SCHEMAS.glob("*.schema.json"))
    done = ajv_run("compile", "-s", f"{SCHEMAS}/*.schema.json")  # one Node start for all
    assert done.returncode == 0, done.stderr or done.stdout
    valid = {
        Path(line.removeprefix("schema ").removesuffix(" is valid")).name
        for line in done.stdout.splitlines()
        if line.endswith(" is valid")
    }
    assert sorted(valid) == names
    assert len(names) == len(EVENT_TYPES) + 3  # the envelope, anomalies, KPI records


def test_ajv_strict_mode_does_refuse_an_unknown_keyword(tmp_path):
    schema = orjson.loads((SCHEMAS / "event.schema.json").read_bytes())
    schema["discriminator"] = {"propertyName": "type"}  # what pydantic adds, and we remove
    path = tmp_path / "event.schema.json"
    path.write_bytes(orjson.dumps(schema))
    done = ajv_run("compile", "-s", str(path))
    assert done.returncode != 0
    assert "discriminator" in done.stderr + done.stdout


def test_the_three_validators_accept_every_simulated_event(python_validator, tmp_path):
    valid = simulated_valid(per_type=80)
    assert {orjson.loads(v)["type"] for v in valid} == EVENT_TYPES

    assert [v for v in valid if not pydantic_accepts(v)] == []
    assert [v for v in valid if not python_accepts(python_validator, v)] == []
    verdicts = ajv_verdicts(SCHEMAS / "event.schema.json", valid, tmp_path / "valid")
    assert [v for v, ok in zip(valid, verdicts, strict=True) if not ok] == []


def test_the_three_validators_agree_on_every_hostile_message(python_validator, tmp_path):
    messages = hostile_set()
    undecodable = [(kind, value) for kind, value in messages if not decodable(value)]
    documents = [(kind, value) for kind, value in messages if decodable(value)]
    assert all(
        worker_answer(value) in {"undecodable", "non_finite_number"} for _, value in undecodable
    )
    assert len(documents) > 1000

    values = [value for _, value in documents]
    assert all(value is not None for value in values)
    by_ajv = ajv_verdicts(SCHEMAS / "event.schema.json", values, tmp_path / "hostile")
    disagreements: list[tuple[str, bool, bool, bool, bytes]] = []
    accepted: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    for (kind, value), ajv_ok in zip(documents, by_ajv, strict=True):
        assert value is not None
        service = pydantic_accepts(value)
        python = python_accepts(python_validator, value)
        if not service == python == ajv_ok:
            disagreements.append((kind, service, python, ajv_ok, value[:300]))
        (accepted if service else refused)[kind.split("/")[0]] += 1
    assert not disagreements, (
        f"{len(disagreements)} (kind, pydantic, jsonschema, ajv): "
        + "\n".join(map(repr, disagreements[:10]))
    )
    # The set exercised both answers: many kinds refused by all three.
    assert len(refused) >= 8, refused
    assert sum(accepted.values()) > 0


def test_what_the_schema_accepts_the_worker_refuses_only_for_reasons_no_schema_can_say(
    python_validator,
):
    answers: Counter[str] = Counter()
    for kind, value in hostile_set():
        if value is None or not decodable(value) or not python_accepts(python_validator, value):
            continue
        reason = worker_answer(value)
        if reason is not None:
            answers[f"{reason} ({kind.split('/')[0]})"] += 1
            assert reason in SCHEMA_BLIND, (kind, reason, value[:300])
    assert answers, "the hostile set has late, old or repeated-key events the schema passes"


GOOD_ORDER = {
    "event_id": "e-1",
    "type": "order_placed",
    "occurred_at": "2026-11-22T10:00:00Z",
    "source": "oms",
    "schema_version": 1,
    "dimensions": {"business_unit": "retail", "region": "emea"},
    "order_id": "o-1",
    "amount": "129.90",
    "currency": "EUR",
}
# (a change to the good order, the JSON pointer of the field the errors must be about), by hand.
BROKEN = [
    ({"amount": "-5"}, "/amount"),
    ({"currency": "euro"}, "/currency"),
    ({"dimensions": {"business_unit": "retail"}}, "/dimensions"),
    ({"occurred_at": "1709294400"}, "/occurred_at"),
    ({"type": "order_teleported"}, "/type"),
]


@pytest.mark.parametrize(("change", "pointer"), BROKEN)
def test_errors_are_about_the_events_own_type_and_field(
    python_validator, tmp_path, change, pointer
):
    document = {**GOOD_ORDER, **change}
    errors = list(python_validator.iter_errors(document))
    assert errors
    assert {"/" + "/".join(map(str, e.absolute_path)) for e in errors} <= {pointer, "/"}
    assert best_match(python_validator.iter_errors(document)).json_path == "$" + pointer.replace(
        "/", "."
    )

    path = tmp_path / "event.json"
    path.write_bytes(orjson.dumps(document))
    done = ajv_run(
        "validate", "--errors=json", "-s", str(SCHEMAS / "event.schema.json"), "-d", str(path)
    )
    report = (done.stdout + done.stderr).split(" invalid", 1)[1]
    ajv_errors = orjson.loads(report)
    assert {e["instancePath"] for e in ajv_errors} <= {pointer, ""}
    assert any(e["instancePath"] == pointer for e in ajv_errors)
    # Only the event's own type is judged: no error comes from another type's schema.
    judged = {d for e in ajv_errors for d in re.findall(r"\$defs/(\w+)", e["schemaPath"])}
    assert judged <= {"OrderPlaced", "Dimensions"}, judged
