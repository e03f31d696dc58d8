"""`pulse soak` end to end, short: a real worker process, progress lines, summary, exit code."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.any_broker  # what is checked does not depend on the broker

PROGRESS = re.compile(
    r"^\[\s*(\d+)s\] sent (\d+) \| lag (\d+|\?) \| rss (\d+\.\d) MB"
    r" \| join (\d+) \(evicted (\d+)\)( \| drained)?$"
)
SUMMARY = re.compile(
    r"^soak: rss after warm-up (\d+\.\d) MB \(at (\d+)s\), at end (\d+\.\d) MB, change "
    r"([+-]\d+\.\d)% \| peak (\d+\.\d) MB \| max lag (\d+) \| final lag (\d+) \| sent (\d+) \| "
    r"(PASS|FAIL)"
)


def test_a_short_soak_prints_progress_and_a_summary_and_exits_by_its_verdict(
    kafka_bootstrap: str,
) -> None:
    env = os.environ | {"PULSE_KAFKA_BOOTSTRAP": kafka_bootstrap}
    # A generous limit: 8 s are all warm-up for a worker; the verdict judged is the lag's.
    command = ["soak", "--duration", "8", "--every", "2", "--rate", "200", "--max-growth", "1"]
    run = subprocess.run(
        [sys.executable, "-m", "streams.cli", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    lines = run.stdout.splitlines()
    progress = [m for line in lines if (m := PROGRESS.match(line))]
    summaries = [m for line in lines if (m := SUMMARY.match(line))]
    assert len(summaries) == 1, run.stdout + run.stderr
    assert run.returncode == 0, run.stdout + run.stderr
    summary = summaries[0]
    assert summary[9] == "PASS"
    assert len(progress) >= 4  # at 2, 4, 6 and 8 s, then one after the drain
    assert progress[-1][7] == " | drained"
    assert progress[-1][3] == "0"
    sent = int(summary[8])
    # 8 s at 200 events/s is 1600 on average; a Poisson count is within 1600 +- 5 sigma (200).
    assert 1400 <= sent <= 1800
    assert int(progress[-1][2]) == sent
    assert int(summary[7]) == 0  # final lag
    warm, end = float(summary[1]), float(summary[3])
    # The change is recomputed from the two figures it was printed with (rounded to 0.1 MB).
    assert float(summary[4]) == pytest.approx((end / warm - 1) * 100, abs=0.2)
    assert float(summary[5]) >= max(warm, end) - 0.1
    # Every order started is in the join (none delivered within 8 s; the bound, 20000 per
    # partition, is far): at most the valid events counted, and none evicted.
    assert 0 < int(progress[-1][5]) < sent
    assert int(progress[-1][6]) == 0
