"""The merge stage's detection records: whatever prefix of its table writes a crash leaves
durable, the restored detection goes on with exactly the alerts of a run that never stopped."""

from __future__ import annotations

import random
from collections.abc import Iterator, MutableMapping

import pytest
from test_detection_state import CATALOG, START, recorded, stream

from streams.core.kpi_values import KpiValue
from streams.detection.watch import AnomalyEvent
from streams.merge import detection as detection_module
from streams.merge.detection import COMMIT, StageDetection


class Log(MutableMapping[str, str]):
    """A table that remembers its writes in order (a changelog partition)."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.writes: list[tuple[str, str | None]] = []

    def __getitem__(self, key: str) -> str:
        return self.data[key]

    def __setitem__(self, key: str, value: str) -> None:
        self.data[key] = value
        self.writes.append((key, value))

    def __delitem__(self, key: str) -> None:
        del self.data[key]
        self.writes.append((key, None))

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def replayed(self, count: int) -> Log:
        """The table as recovered from the first `count` writes of the changelog."""
        table = Log()
        for key, value in self.writes[:count]:
            if value is None:
                table.data.pop(key, None)
            else:
                table.data[key] = value
        return table


NOW = START + 641 * 60.0
"""Wall-clock: the last instance just ended (older than 400 steps would not be watched live)."""


def batches(minutes: int, seed: int) -> list[list[KpiValue]]:
    """The stream's instances in feeds of one to four instances (progress records vary)."""
    instances = stream(minutes)
    rng = random.Random(seed)
    out: list[list[KpiValue]] = []
    i = 0
    while i < len(instances):
        take = rng.randint(1, 4)
        out.append([v for values in instances[i : i + take] for v in values])
        i += take
    return out


def state_of(detection: StageDetection) -> tuple[list[bytes], bytes]:
    series, shared = recorded(detection.watch)
    return sorted(series), shared


def run(
    detection: StageDetection,
    table: MutableMapping[str, str],
    feeds: list[list[KpiValue]],
    now: float = NOW,
) -> list[AnomalyEvent]:
    return [e for values in feeds for e in detection.observe(values, table, now)]


def test_any_crash_point_resumes_with_the_alerts_of_an_uninterrupted_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(detection_module, "INPUT_ROWS", 10)  # feeds of 6-24 values: parts
    reference = StageDetection(CATALOG, snapshot_instances=7)
    whole = run(reference, {}, batches(640, seed=1))
    assert any(e.state == "opened" for e in whole), "the dip opened no alert"
    table = Log()
    first = StageDetection(CATALOG, snapshot_instances=7)
    run(first, table, batches(640, seed=2))  # other feed boundaries: same alerts
    assert run(StageDetection(CATALOG, snapshot_instances=7), {}, batches(640, seed=2)) == whole
    commits = [i for i, (key, _) in enumerate(table.writes) if key == COMMIT]
    rng = random.Random(20261206)
    crashes = [*sorted(rng.sample(range(len(table.writes)), 12)), commits[3], commits[3] + 1]
    inputs = {k.split("|")[1] for k in table.data if k.startswith("i|")}
    assert 0 < len(inputs) <= 7, "inputs older than the newest snapshot are deleted"
    assert any(k.startswith("i|") and k.endswith("|2") for k, _ in table.writes), "in parts"
    replays = []
    for crash in crashes:
        durable = table.replayed(crash)
        again = StageDetection(CATALOG, snapshot_instances=7)
        again.restore(durable)
        through = again.through
        replays.append(again.replayed)
        resumed = run(again, durable, batches(640, seed=3))  # replayed from the start
        want = [e for e in whole if e.window_end is not None and e.window_end > through]
        assert resumed == want, f"crash after write {crash} (through {through})"
        assert state_of(again) == state_of(reference), "the same state at the end"
    assert any(replays), f"some restores replayed logged inputs: {replays}"


def test_a_forgotten_series_is_deleted_once_its_epoch_is_committed() -> None:
    quiet = [  # APAC stops selling after 150 minutes: its series go idle and are forgotten
        [v for v in values if i < 150 or ("region", "apac") not in v.labels]
        for i, values in enumerate(stream(300))
    ]
    table = Log()
    detection = StageDetection(CATALOG, snapshot_instances=7)
    run(detection, table, quiet, now=START + 301 * 60.0)
    apac = [k for k, _ in table.writes if k.endswith("region=apac")]
    assert apac, "APAC's series were recorded"
    tombstones = [k for k, v in table.writes if k in apac and v is not None and v.endswith("|")]
    deleted = [k for k, v in table.writes if k in apac and v is None]
    assert tombstones, "forgotten: an empty record first"
    assert set(deleted) == {*apac}, "then both slots deleted"
    assert not [k for k in table.data if k.endswith("region=apac")]
    assert not [k for k in detection.watch.series if ("region", "apac") in k[2]]
    restored = StageDetection(CATALOG, snapshot_instances=7)
    restored.restore(table)
    assert sorted(restored.watch.series) == sorted(detection.watch.series)
