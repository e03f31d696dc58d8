"""The command line's answers to wrong input: exit code 2 and a message naming the setting."""

from __future__ import annotations

import pytest

from streams.cli import main


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PULSE_KAFKA_BOOTSTRAP", "PULSE_BUSINESS_TIMEZONE", "PULSE_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)


def test_worker_without_a_broker_names_the_variable(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["worker"]) == 2
    assert "PULSE_KAFKA_BOOTSTRAP is not set" in capsys.readouterr().err


def test_a_bad_setting_fails_at_start_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PULSE_BUSINESS_TIMEZONE", "Mars/Olympus_Mons")
    assert main(["worker"]) == 2
    assert "PULSE_BUSINESS_TIMEZONE" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["demo", "--rate", "0"], ["demo", "--bad-ratio", "2"], ["demo", "--metrics-port", "x"]]
)
def test_bad_options_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert argv[1] in capsys.readouterr().err


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo", "worker", "simulate", "generate", "bench", "hostile"):
        assert command in out


def test_generate_check_passes_on_the_committed_files() -> None:
    assert main(["generate", "--check"]) == 0
