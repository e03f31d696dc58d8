"""`pulse backtest` on the reference ledger prints exactly the rows expected.py computes.

The engine is run as a process on the file, with the reference settings and no other PULSE_*
variable, and its CSV is compared row by row: the same keys; money and counts equal; ratios and
days within 1e-9; order cycle time quantiles within 1% (the engine's DDSketch guarantee).
Skipped only while `pulse backtest` does not exist.
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from expected import agrees, expected_rejections, expected_rows
from ledger import SETTINGS_ENV, ledger_bytes, ledger_lines

REPO = Path(__file__).resolve().parents[2]
HEADER = ["kpi", "window", "window_start", "window_end", "dimensions", "value"]
PLAIN_DECIMAL = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
SHOWN = 20
# Lines that are not "invalid" in the document's sense: valid events that are not counted.
NOT_INVALID = frozenset({"duplicate", "late"})
REASONS = (
    "undecodable",
    "oversized",
    "schema_violation",
    "unknown_type",
    "non_finite_number",
    "timestamp_out_of_range",
    "unknown_currency",
    "duplicate",
    "late",
)


def pulse(*args: str) -> list[str]:
    return [sys.executable, "-m", "streams.cli", *args]


def reference_env() -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("PULSE_")}
    env.update(SETTINGS_ENV)
    return env


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str

    def explain(self) -> str:
        return f"exit code {self.returncode}; stderr (last 3000 chars):\n{self.stderr[-3000:]}"


@pytest.fixture(scope="module")
def backtest(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """`pulse backtest LEDGER` run once for the module (CSV on stdout)."""
    probe = subprocess.run(
        pulse("backtest", "--help"),
        cwd=REPO,
        env=reference_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        pytest.skip(
            "`pulse backtest` does not exist yet: `python -m streams.cli backtest --help` "
            f"exited {probe.returncode} ({last})"
        )
    path = tmp_path_factory.mktemp("reference") / "ledger.jsonl"
    path.write_bytes(ledger_bytes())
    done = subprocess.run(
        pulse("backtest", str(path)),
        cwd=REPO,
        env=reference_env(),
        capture_output=True,
        timeout=600,
        check=False,
    )
    return Run(
        done.returncode,
        done.stdout.decode("utf-8", errors="replace"),
        done.stderr.decode("utf-8", errors="replace"),
    )


def csv_rows(run: Run) -> list[list[str]]:
    assert run.returncode == 0, run.explain()
    return list(csv.reader(io.StringIO(run.stdout)))


def parsed(run: Run) -> dict[tuple[str, ...], str]:
    """{key: value text} of the CSV body; fails on a repeated key."""
    rows = csv_rows(run)[1:]
    table: dict[tuple[str, ...], str] = {}
    repeated = []
    for row in rows:
        assert len(row) == len(HEADER), f"row with {len(row)} columns: {row}"
        key = tuple(row[:5])
        if key in table:
            repeated.append(key)
        table[key] = row[5]
    assert not repeated, f"{len(repeated)} keys printed more than once, e.g. {repeated[:SHOWN]}"
    return table


def test_header(backtest: Run) -> None:
    rows = csv_rows(backtest)
    assert rows, "no CSV on stdout"
    assert rows[0] == HEADER


def test_the_rows_are_exactly_the_expected_ones(backtest: Run) -> None:
    actual = set(parsed(backtest))
    expected = set(expected_rows(ledger_lines()))
    missing = sorted(expected - actual)
    unexpected = sorted(actual - expected)
    report = (
        f"{len(missing)} missing (first {SHOWN}):\n"
        + "\n".join(map(str, missing[:SHOWN]))
        + f"\n{len(unexpected)} unexpected (first {SHOWN}):\n"
        + "\n".join(map(str, unexpected[:SHOWN]))
    )
    if missing or unexpected:
        pytest.fail(report, pytrace=False)


def test_the_values_are_the_expected_ones(backtest: Run) -> None:
    actual = parsed(backtest)
    wrong = []
    for key, want in sorted(expected_rows(ledger_lines()).items()):
        if key not in actual:
            continue  # reported by the key test
        text = actual[key]
        assert PLAIN_DECIMAL.match(text), f"{key}: value {text!r} is not a plain decimal"
        got = Decimal(text)
        if not agrees(key[0], got, want):
            wrong.append(f"{key}: got {got}, expected {want}")
    if wrong:
        pytest.fail(
            f"{len(wrong)} wrong values (first {SHOWN}):\n" + "\n".join(wrong[:SHOWN]),
            pytrace=False,
        )


def _mentions_line(text: str, number: int) -> bool:
    """'line 12', 'line: 12', 'line #12' or 'FILE:12:' style references."""
    return bool(re.search(rf"(?i)\bline\s*[:#=]?\s*{number}\b|:{number}:", text))


def test_stderr_reports_every_invalid_line_with_its_number(backtest: Run) -> None:
    assert backtest.returncode == 0, backtest.explain()
    stderr_lines = backtest.stderr.splitlines()
    problems = []
    for number, reason in sorted(expected_rejections(ledger_lines()).items()):
        if reason in NOT_INVALID:
            continue
        reports = [text for text in stderr_lines if _mentions_line(text, number)]
        if not reports:
            problems.append(f"line {number} ({reason}) not reported")
            continue
        # The format is free, but a report that names a reason must name the right one.
        named = {r for text in reports for r in REASONS if r in text}
        if named and reason not in named:
            problems.append(f"line {number}: expected {reason}, stderr says {sorted(named)}")
    if problems:
        stderr = backtest.stderr[-3000:]
        pytest.fail("\n".join(problems) + f"\n--- stderr ---\n{stderr}", pytrace=False)


def test_the_rows_do_not_depend_on_when_windows_are_finalized() -> None:
    """In process, finalizing after every line (as a live worker may) gives the same rows as
    one pass: October, restated by the Nov 1 budget revision, is its last revision."""
    from streams.offline.backtest import run_backtest  # noqa: PLC0415 - the CLI run is the main one
    from streams.settings import Settings  # noqa: PLC0415

    settings = Settings(**{k.removeprefix("PULSE_").lower(): v for k, v in SETTINGS_ENV.items()})
    runs = []
    for every in (1, 7, 10_000):
        out, err = io.StringIO(), io.StringIO()
        run_backtest(ledger_lines(), settings, out, err, flush_every=every)
        runs.append(sorted(csv.reader(io.StringIO(out.getvalue()))))
    assert runs[0] == runs[1] == runs[2]
    october_sales = [
        r for r in runs[0] if r[0] == "budget_variance_ratio" and r[4] == "cost_center=sales"
    ]
    assert [r[5] for r in october_sales if r[2] == "2026-09-30T22:00:00Z"] == ["0.6237500000"]
