"""`pulse soak`: a long run at a steady rate, judging whether a real worker's memory stays flat.

The embedded broker (or PULSE_KAFKA_BOOTSTRAP) gets a fresh topic; `pulse worker` runs as a child
process, so the resident memory measured (VmRSS in /proc/PID/status) is the worker's alone; the
simulator publishes at `rate` events per second with event time = now (its daily shape is
compensated, so the rate holds whatever the hour). Every `every` seconds a progress line:

    [   120s] sent 60012 | lag 0 | rss 61.4 MB | join 60000 (evicted 4410)

(lag: messages the worker has not read yet, from its /readyz; join: entries of the cycle-time
join and those evicted at its bound, from its /metrics). After `duration` seconds publishing stops,
the worker gets up to `drain` seconds to read the rest, then one summary line:

    soak: rss after warm-up 58.2 MB (at 360s), at end 60.1 MB, change +3.3% | peak 61.0 MB |
    max lag 812 | final lag 0 | sent 900021 | PASS

It fails (exit 1) when RSS grew more than `max_growth` after warm-up (the first `warmup` share of
the run: the dedupe memory, minute buckets and pools filling), when the lag did not return to 0,
or when the worker died.

One part of the state legitimately outgrows any short run: the order -> delivery join remembers
every order for 30 days of event time (~190 bytes each; at 500 events/s ~300 orders start a
second, ~3.5 MB a minute) up to `PULSE_JOIN_MAX_ENTRIES` per partition (default 1M, ~190 MB).
The soak therefore runs the worker with a join bound of `join_max_entries` (default 20000 per
partition, full within about 4 minutes at 500 events/s, before the warm-up ends), so the baseline
includes the join at its bound and any growth after it is not the join's; the progress lines show
the join staying at its bound. `join_max_entries=0` keeps the worker's own setting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from streams.errors import FatalError
from streams.kafka.clients import TopicSpec, ensure_topics, quiet_kafka_logs
from streams.kafka.connection import KafkaTarget
from streams.kafka.embedded import die_with_parent, free_port, kafka_bootstrap
from streams.settings import Settings
from streams.tools.publisher import PublishStats, publish
from streams.tools.simulator import SimulationConfig, daily_level, simulate

WORKER_START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class SoakOptions:
    duration: float = 1800.0
    """Seconds of publishing."""
    rate: float = 500.0
    """Events per second, bad ones included."""
    every: float = 30.0
    """Seconds between progress lines."""
    warmup: float = 0.2
    """Share of `duration` after which RSS is the baseline."""
    max_growth: float = 0.10
    """Largest RSS growth after warm-up that passes, as a share of the baseline."""
    drain: float = 60.0
    """Seconds the worker gets after publishing to read to the end."""
    partitions: int = 3
    join_max_entries: int = 20_000
    """The worker's PULSE_JOIN_MAX_ENTRIES (per partition) for the run; 0: its own setting."""
    seed: int = 42
    bad_ratio: float = 0.02


@dataclass
class SoakResult:
    """What a soak measured; RSS in bytes, None until sampled."""

    warm_rss: int | None = None
    warm_at: float = 0.0
    end_rss: int | None = None
    peak_rss: int = 0
    max_lag: int = 0
    final_lag: int | None = None
    sent: int = 0
    interrupted: bool = False
    passed: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def growth(self) -> float | None:
        if self.warm_rss is None or self.end_rss is None:
            return None
        return self.end_rss / self.warm_rss - 1

    def judge(self, max_growth: float) -> bool:
        """Whether the run passed; fills `problems` with why not."""
        warm, end, growth = self.warm_rss, self.end_rss, self.growth
        if warm is None or end is None or growth is None:
            self.problems.append("run too short to measure RSS after warm-up")
        elif end > warm * (1 + max_growth):  # in bytes: 10% of 100 MB is no float rounding
            self.problems.append(f"RSS grew {growth:+.1%} after warm-up (limit {max_growth:+.0%})")
        if self.final_lag != 0:
            last = "unknown" if self.final_lag is None else self.final_lag
            self.problems.append(f"lag did not return to 0 ({last})")
        return not self.problems

    def summary(self, passed: bool) -> str:
        growth = self.growth
        verdict = "INTERRUPTED" if self.interrupted else "PASS" if passed else "FAIL"
        return (
            f"soak: rss after warm-up {_mb(self.warm_rss)}"
            + (f" (at {self.warm_at:.0f}s)" if self.warm_rss is not None else "")
            + ", "
            f"at end {_mb(self.end_rss)}, change "
            + ("n/a" if growth is None else f"{growth:+.1%}")
            + f" | peak {_mb(self.peak_rss)} | max lag {self.max_lag} | final lag "
            + ("n/a" if self.final_lag is None else str(self.final_lag))
            + f" | sent {self.sent} | {verdict}"
            + (f" ({'; '.join(self.problems)})" if self.problems and not self.interrupted else "")
        )


def _mb(size: int | None) -> str:
    return "n/a" if size is None else f"{size / 1e6:.1f} MB"


def rss_bytes(pid: int) -> int:
    """Resident set size of process `pid` (VmRSS); raises OSError when it is gone."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise OSError(f"no VmRSS for pid {pid} (a zombie?)")


def readiness(port: int, timeout: float = 5.0) -> dict[str, object] | None:
    """The worker's /readyz JSON (served with 200 or 503), or None when it does not answer."""
    url = f"http://127.0.0.1:{port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            body = answer.read()
    except urllib.error.HTTPError as failing:  # 503 carries the same JSON
        body = failing.read()
    except (OSError, ValueError):
        return None
    details = json.loads(body)
    return details if isinstance(details, dict) else None


def join_figures(port: int, timeout: float = 5.0) -> tuple[int, int] | None:
    """(entries, evictions) of the worker's cycle-time join from its /metrics, or None."""
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            text = answer.read().decode()
    except (OSError, ValueError):
        return None
    found: dict[str, int] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in {"pulse_join_entries", "pulse_join_evictions_total"}:
            found[name] = int(float(value))
    try:
        return found["pulse_join_entries"], found["pulse_join_evictions_total"]
    except KeyError:  # a worker without them
        return None


def steady_rate(rate: float, start: float, seconds: float) -> float:
    """The simulator's daily-mean rate that gives `rate` on average over [start, start +
    seconds] (the simulator follows a daily shape; a soak wants a flat load)."""
    steps = max(1, math.ceil(seconds / 60))
    level = sum(daily_level(start + (i + 0.5) * seconds / steps) for i in range(steps)) / steps
    return rate / level


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def run_soak(
    settings: Settings, options: SoakOptions, say: Callable[[str], None] = _say
) -> SoakResult:
    """Run the soak and print its summary. Raises `FatalError` when the worker died. SIGINT and
    SIGTERM stop it early (the summary then says INTERRUPTED; `interrupted` is set)."""
    quiet_kafka_logs()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    result = SoakResult()
    try:
        with kafka_bootstrap(settings) as bootstrap:
            where = "Kafka" if settings.kafka_bootstrap else "embedded broker"
            say(
                f"soak: {options.rate:g} events/s for {options.duration:g}s, {where} at "
                f"{bootstrap}; RSS baseline after {options.warmup:.0%} of the run"
            )
            await _soak(_Run(settings, options, bootstrap, stop, result, say))
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    result.interrupted = stop.is_set()
    result.passed = result.judge(options.max_growth) and not result.interrupted
    say(result.summary(result.passed))
    return result


@dataclass
class _Run:
    """One soak's parts, shared by its steps."""

    settings: Settings
    options: SoakOptions
    bootstrap: KafkaTarget
    stop: asyncio.Event
    result: SoakResult
    say: Callable[[str], None]
    port: int = 0
    worker: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.worker is not None
        return self.worker.pid


async def _soak(run: _Run) -> None:
    run_id = uuid.uuid4().hex[:8]
    topic = f"soak-{run_id}.events"
    await ensure_topics(run.bootstrap, [TopicSpec(topic, run.options.partitions)])
    run.port = free_port()
    env = os.environ | {
        "PULSE_KAFKA_BOOTSTRAP": str(run.bootstrap),
        "PULSE_INPUT_TOPICS": topic,
        "PULSE_TOPIC_PREFIX": f"soak-{run_id}",
        "PULSE_CONSUMER_GROUP": f"soak-{run_id}",
        "PULSE_METRICS_HOST": "127.0.0.1",
        "PULSE_METRICS_PORT": str(run.port),
        "PULSE_LOG_LEVEL": "WARNING",
    }
    if run.options.join_max_entries:
        env["PULSE_JOIN_MAX_ENTRIES"] = str(run.options.join_max_entries)
    log_path = Path(tempfile.gettempdir()) / f"pulse-soak-{run_id}-worker.log"
    with log_path.open("wb") as log_file:
        worker = run.worker = _start_worker(env, log_file)
        run.say(f"worker pid {worker.pid}, /readyz on port {run.port}, log {log_path}")
        try:
            await _wait_serving(run)
            await _measure(run, topic)
        finally:
            _stop_worker(worker, run.say)
    if worker.returncode not in (0, -signal.SIGTERM) and not run.stop.is_set():
        tail = log_path.read_text(errors="replace")[-2000:]
        raise FatalError(f"the worker exited with {worker.returncode}: {tail}")


def _start_worker(env: dict[str, str], log_file: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        # Own session: a terminal's Ctrl-C reaches us only; we stop the worker ourselves.
        start_new_session=True,
        preexec_fn=die_with_parent,  # noqa: PLW1509 - no threads are started before this
    )


def _stop_worker(worker: subprocess.Popen[bytes], say: Callable[[str], None]) -> None:
    if worker.poll() is not None:
        return
    worker.terminate()
    try:
        worker.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        say(f"worker did not stop within {STOP_TIMEOUT_S:.0f}s; killing it")
        worker.kill()
        worker.wait(5)


def _check_alive(run: _Run) -> None:
    assert run.worker is not None
    if run.worker.poll() is not None:
        raise FatalError(f"the worker exited with {run.worker.returncode} during the soak")


async def _wait_serving(run: _Run) -> None:
    deadline = time.monotonic() + WORKER_START_TIMEOUT_S
    while not run.stop.is_set():
        _check_alive(run)
        if await asyncio.to_thread(readiness, run.port, 1.0) is not None:
            return
        if time.monotonic() > deadline:
            raise FatalError(f"the worker did not serve /readyz within {WORKER_START_TIMEOUT_S}s")
        await asyncio.sleep(0.2)


async def _measure(run: _Run, topic: str) -> None:
    """Publish for `duration`, sampling RSS and lag; then wait for the lag to reach 0."""
    options, result, stop = run.options, run.result, run.stop
    start = datetime.now(UTC)
    config = SimulationConfig(
        start=start,
        seed=options.seed,
        rate=steady_rate(options.rate, start.timestamp(), options.duration),
        duration=options.duration,
        bad_ratio=options.bad_ratio,
        max_event_bytes=run.settings.max_event_bytes,
    )
    stats = PublishStats()
    publisher = asyncio.create_task(
        publish(run.bootstrap, topic, simulate(config), stop, stats=stats), name="publisher"
    )
    stopping = asyncio.create_task(stop.wait())
    began = time.monotonic()
    warm_at = began + options.warmup * options.duration
    next_line = began + options.every
    try:
        while True:
            wake = min(next_line, warm_at) if result.warm_rss is None else next_line
            await asyncio.wait((publisher, stopping), timeout=max(0.0, wake - time.monotonic()))
            if stop.is_set():
                return
            if publisher.done():
                publisher.result()  # raises what stopped it
                break
            lag, rss = await _sample(run)
            result.sent = stats.sent
            now = time.monotonic()
            if result.warm_rss is None and now >= warm_at:
                result.warm_rss, result.warm_at = rss, now - began
            if now >= next_line:
                join = await asyncio.to_thread(join_figures, run.port)
                run.say(_progress(now - began, stats.sent, lag, rss, join))
                next_line += options.every
        result.final_lag = await _drain(run)
        result.end_rss = rss_bytes(run.pid)
        result.sent = stats.sent
        elapsed = time.monotonic() - began
        join = await asyncio.to_thread(join_figures, run.port)
        line = _progress(elapsed, stats.sent, result.final_lag, result.end_rss, join)
        run.say(line + " | drained")
    finally:
        stopping.cancel()
        if not publisher.done():
            publisher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publisher


async def _sample(run: _Run) -> tuple[int | None, int]:
    """(lag, RSS bytes) of the worker now; lag None while it is unknown."""
    _check_alive(run)
    rss = rss_bytes(run.pid)
    run.result.peak_rss = max(run.result.peak_rss, rss)
    details = await asyncio.to_thread(readiness, run.port)
    if not details or not details.get("partitions"):
        return None, rss  # not assigned yet: its lag is unknown, not 0
    lag = details.get("lag_messages")
    if not isinstance(lag, int):
        return None, rss
    run.result.max_lag = max(run.result.max_lag, lag)
    return lag, rss


async def _drain(run: _Run) -> int | None:
    """Wait until the worker reports lag 0 (up to `drain` seconds); the last lag seen."""
    deadline = time.monotonic() + run.options.drain
    lag: int | None = None
    while not run.stop.is_set():
        lag, _ = await _sample(run)
        if lag == 0 or time.monotonic() > deadline:
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.stop.wait(), 1.0)
    return lag


def _progress(
    elapsed: float, sent: int, lag: int | None, rss: int, join: tuple[int, int] | None
) -> str:
    shown = "?" if lag is None else str(lag)
    line = f"[{elapsed:6.0f}s] sent {sent} | lag {shown} | rss {rss / 1e6:.1f} MB"
    if join is not None:
        line += f" | join {join[0]} (evicted {join[1]})"
    return line
