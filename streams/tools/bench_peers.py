"""`pulse bench --peers VENVS` (`make bench-peers`): kpi-pulse against Bytewax and Quix Streams.

One broker (embedded unless `PULSE_KAFKA_BOOTSTRAP`), the bench's events produced once; then,
alternately for a few rounds, on the same topic:
- the *ceiling*: the plain aiokafka + orjson + pydantic consumer of `pulse bench`;
- *kpi-pulse* with the `revenue-orders` catalog (`streams.tools.bench_catalog`): one `Worker`,
  detection as the settings say (on by default), timed from assignment to every message acked,
  then the same without detection;
- each *peer* doing the same job (deploy/bench-peers/peer_job.py: decode with orjson, validate
  with our pydantic contract, sum revenue and count orders per business unit, region, currency
  and 1-minute event-time window, to final results), run as a subprocess by the Python of its own
  venv (`VENVS/<peer>/bin/python`; the peers are never kpi-pulse dependencies), timed by itself
  from its first message to its final windows (its start and group join are not throughput).
Each figure is N events over the time, with its ratio to the same round's ceiling (the mean of
the ceiling measured before and after the round, as the machine's load drifts). Every peer
run's windows are checked against an independent sum (`streams.tools.peer_check`): a run that is
wrong counts as failed, not fast. Returns whether every peer run was right.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import statistics
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.errors import ConfigError
from streams.kafka.clients import TopicSpec, ensure_topics, quiet_kafka_logs
from streams.kafka.connection import as_connection
from streams.kafka.embedded import kafka_bootstrap
from streams.settings import Settings
from streams.tools.bench import bench_messages, measure_ceiling, measure_pipeline
from streams.tools.bench_catalog import bench_catalog
from streams.tools.peer_check import Expected, check_peer, expected_windows
from streams.tools.publisher import publish

ROOT = Path(__file__).resolve().parents[2]
PEER_JOBS = ROOT / "deploy" / "bench-peers"
PEERS = ("bytewax", "quixstreams")
PEER_TIMEOUT_S = 300.0
LOGS = Path(tempfile.gettempdir()) / "pulse-bench-peers"
"""Where each peer run's stderr is kept (one file per consumer group, overwritten by none)."""


@dataclass
class Figures:
    """One path's events/s and ratios to its round's ceiling, round by round."""

    rates: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


async def run_peers_bench(
    settings: Settings,
    events: int,
    partitions: int,
    rounds: int,
    *,
    venvs: Path,
    say: Callable[[str], None],
) -> bool:
    """Run the comparison and print it; True when every peer run's result was right."""
    pythons = {peer: venvs / peer / "bin" / "python" for peer in PEERS}
    for python in pythons.values():
        if not python.exists():
            raise ConfigError(f"bench --peers: no {python} (`make bench-peers` makes the venvs)")
    if not (PEER_JOBS / "peer_job.py").exists():
        raise ConfigError(f"bench --peers: no {PEER_JOBS} (run it from a kpi-pulse checkout)")
    quiet_kafka_logs()
    logging.getLogger("streams").setLevel(logging.ERROR)  # a past stream: every source is stale
    catalog = bench_catalog("revenue-orders")
    with kafka_bootstrap(settings) as bootstrap:
        if as_connection(bootstrap).protocol != "PLAINTEXT":
            raise ConfigError("bench --peers: the peers' jobs connect over PLAINTEXT only")
        address = str(bootstrap)
        run_id = uuid.uuid4().hex[:8]
        topic = f"bench-{run_id}.events"
        await ensure_topics(bootstrap, [TopicSpec(topic, partitions)])
        messages = bench_messages(settings, events)
        expected = expected_windows(messages)
        say(
            f"bench --peers: {events} events on {partitions} partitions at {bootstrap}; the "
            f"revenue + orders job: {expected.items} items in {len(expected.windows)} windows"
        )
        await publish(bootstrap, topic, messages, paced=False)
        del messages
        ours_off = "kpi-pulse, detection off"
        paths = {"kpi-pulse": Figures(), ours_off: Figures(), **{p: Figures() for p in PEERS}}
        off = settings.model_copy(update={"detection": False})
        ceilings: list[float] = []
        for round_no in range(1, rounds + 1):
            before, _ = await measure_ceiling(bootstrap, topic, partitions, events)
            results: dict[str, float] = {}
            ours, _ = await measure_pipeline(
                settings, bootstrap, topic, events, run_id=run_id, round_no=round_no,
                catalog=catalog,
            )  # fmt: skip
            results["kpi-pulse"] = ours
            plain, _ = await measure_pipeline(
                off, bootstrap, topic, events, run_id=run_id, round_no=-round_no, catalog=catalog
            )
            results[ours_off] = plain
            for peer, python in pythons.items():
                group = f"bench-{run_id}-{peer}-{round_no}"
                rate, problems = await run_peer(
                    peer, python, bootstrap=address, topic=topic, group=group, expected=expected
                )
                if problems:
                    paths[peer].failures.append(f"round {round_no}: " + "; ".join(problems[:4]))
                    say(f"round {round_no}: {peer} WRONG: {'; '.join(problems[:4])}")
                else:
                    results[peer] = events * rate
                    say(
                        f"round {round_no}: {peer} right ({expected.items} items, "
                        f"{len(expected.windows)} windows)"
                    )
            after, _ = await measure_ceiling(bootstrap, topic, partitions, events)
            ceiling = (before + after) / 2
            ceilings.append(ceiling)
            for name, rate in results.items():
                _record(paths[name], rate, ceiling)
            say(
                f"round {round_no}: ceiling {ceiling:,.0f} events/s (mean of {before:,.0f} before "
                f"and {after:,.0f} after the round) | "
                + " | ".join(
                    f"{name} {results[name] / ceiling:.2f}" if name in results else f"{name} -"
                    for name in paths
                )
            )
        for line in table(ceilings, paths):
            say(line)
        return not any(p.failures for p in paths.values())


def _record(path: Figures, rate: float, ceiling: float) -> None:
    path.rates.append(rate)
    path.ratios.append(rate / ceiling)


def table(ceilings: list[float], paths: dict[str, Figures]) -> list[str]:
    """The figures: each path's median events/s and ratio to its round's ceiling (median, and
    the range over rounds), and whether its result was checked right."""
    lines = [
        "| path | events/s (median) | ratio to the round's ceiling (median; range) | result |",
        "|---|---|---|---|",
        f"| ceiling: aiokafka + orjson + pydantic | {statistics.median(ceilings):,.0f} | 1 | - |",
    ]
    for name, path in paths.items():
        if not path.rates:
            lines.append(f"| {name} | - | - | wrong in every round |")
            continue
        checked = "not checked (own tests)" if name.startswith("kpi-pulse") else "right"
        if path.failures:
            checked = f"wrong in {len(path.failures)} round(s)"
        lines.append(
            f"| {name} | {statistics.median(path.rates):,.0f} | "
            f"{statistics.median(path.ratios):.2f}; {min(path.ratios):.2f}-{max(path.ratios):.2f}"
            f" | {checked} |"
        )
    return lines


async def run_peer(
    peer: str, python: Path, *, bootstrap: str, topic: str, group: str, expected: Expected
) -> tuple[float, list[str]]:
    """Run one peer's job to its end: (1 / seconds it took, what is wrong with its result). Its
    stderr is kept in the temp directory (`LOGS`), named after the group, and named in the
    problems."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    command = [
        str(python), str(PEER_JOBS / f"{peer}_job.py"), "--bootstrap", bootstrap,
        "--topic", topic, "--group", group, "--items", str(expected.items),
    ]  # fmt: skip
    LOGS.mkdir(exist_ok=True)
    log = LOGS / f"{group}.log"
    with log.open("wb") as errors:
        process = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=errors
        )
        try:
            out, _ = await asyncio.wait_for(process.communicate(), PEER_TIMEOUT_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            return 0.0, [f"no result within {PEER_TIMEOUT_S:.0f} s (log: {log})"]
    if process.returncode != 0 or not out.strip():
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        return 0.0, [f"exited with {process.returncode}: {' / '.join(tail)} (log: {log})"]
    report: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    problems = check_peer(expected, report)
    if problems:
        problems.insert(0, f"ended on {report.get('ended')} (log: {log})")
    return 1 / max(float(report["seconds"]), 1e-9), problems
