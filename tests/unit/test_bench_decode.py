"""`python -m streams.tools.bench_decode`: the decode step over the bench's messages (speed is
not judged: it reads every message, most of them the short way, and reports both paths)."""

from __future__ import annotations

import re

import pytest

from streams.tools.bench_decode import main


def test_main_decodes_the_bench_messages_both_ways(capsys: pytest.CaptureFixture[str]) -> None:
    main(["2000", "2"])
    line = capsys.readouterr().out.strip()
    found = re.fullmatch(
        r"decode, 2000 messages \((\d+) the short way\): decode_timed ([\d.]+), ceiling "
        r"\(orjson \+ pydantic\) ([\d.]+) CPU us per message \(min of 2\)",
        line,
    )
    assert found, line
    short, mine, ceiling = int(found[1]), float(found[2]), float(found[3])
    assert 0.95 * 2000 <= short < 2000  # the valid ones but for a few; the 1% bad never
    assert mine > 0
    assert ceiling > 0
