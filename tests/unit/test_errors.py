"""One exception root: everything the pure core and detection raise is a `PulseError`."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from streams.errors import ChangelogError, ContractViolation, FatalError, PulseError

ROOT = Path(__file__).resolve().parents[2]
PURE = sorted((ROOT / "streams" / "core").glob("*.py")) + sorted(
    (ROOT / "streams" / "detection").glob("*.py")
)


def raised_names(path: Path) -> list[tuple[int, str]]:
    """(line, class name) of each `raise Name(...)` in a module; for a function that builds the
    error (`raise fail(...)`), the class its return annotation names. Re-raises and `raise x`
    are skipped."""
    tree = ast.parse(path.read_text())
    returns = {
        node.name: ast.unparse(node.returns)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.returns is not None
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            func = node.exc.func
            if isinstance(func, ast.Name):
                found.append((node.lineno, returns.get(func.id, func.id)))
    return found


@pytest.mark.parametrize("path", PURE, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_pure_core_raises_only_pulse_errors(path: Path) -> None:
    module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
    for line, name in raised_names(path):
        raised = getattr(module, name)
        assert issubclass(raised, PulseError), f"{path.name}:{line} raises {name}"


def test_a_contract_violation_is_still_a_value_error_and_a_bad_changelog_is_fatal() -> None:
    assert issubclass(ContractViolation, ValueError)
    assert issubclass(ChangelogError, FatalError)
