"""The README's by-hand event: valid, keyed by its order, and stamped now (so not `late`)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from streams.core import ValidationLimits, decode_event

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.skipif(shutil.which("bash") is None, reason="the snippet is a bash one")
def test_the_by_hand_event_of_the_readme_is_valid_and_stamped_now() -> None:
    text = README.read_text(encoding="utf-8")
    snippet = re.search(r"^now=\$\(date.*?\n(echo .*?) \|$", text, re.MULTILINE | re.DOTALL)
    assert snippet is not None, "the README's by-hand event snippet moved"
    script = snippet.group(0).removesuffix(" |")
    line = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=True, timeout=10
    ).stdout.strip()
    key, _, value = line.partition("|")
    event = decode_event(value.encode(), ValidationLimits(65536, 300), time.time())
    assert key == getattr(event, "order_id", None) == "o-1"
    assert abs(event.occurred_at.timestamp() - time.time()) < 5
