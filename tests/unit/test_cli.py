"""The command line's answers to wrong input: exit code 2 and a message naming the setting."""

from __future__ import annotations

from pathlib import Path

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


def test_backtest_of_only_rejected_lines_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b'{"not": "an event"}\nnot json\n')
    assert main(["backtest", str(events), "--output", str(tmp_path / "out.csv")]) == 1
    err = capsys.readouterr().err
    assert "line 1: unknown_type" in err
    assert "line 2: undecodable" in err
    assert "every one of the 2 lines was rejected" in err


def test_backtest_to_an_unwritable_output_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"{}\n")
    target = tmp_path / "no-such-folder" / "out.csv"
    assert main(["backtest", str(events), "--output", str(target)]) == 2
    err = capsys.readouterr().err
    assert f"--output {target}: No such file or directory" in err
    assert "Traceback" not in err
