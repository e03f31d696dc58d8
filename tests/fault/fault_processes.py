"""Workers as `pulse worker` subprocesses (restartable, killable by pid), and a producer that
publishes a stream in order at a pace and outlives broker failures."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fault_checks import Samples, parse_metrics

from streams.kafka.clients import new_producer
from streams.kafka.embedded import free_port
from streams.tools.simulator import SimulatedMessage

# --- workers as processes ---------------------------------------------------------------------

RECOVERY = re.compile(r"assigned \[(.*)\]; replayed (\d+) changelog records in ([0-9.]+)s")


@dataclass
class Recovery:
    lifetime: int
    partitions: list[str]
    records: int
    seconds: float


@dataclass
class WorkerProcess:
    """One `pulse worker` (`python -m streams.cli worker`), restartable; every lifetime logs to
    the same file, after a `=== start N ===` line."""

    name: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    lifetimes: int = 0
    started_at: float = 0.0
    exits: list[int] = field(default_factory=list)

    def start(self) -> None:
        assert not self.alive(), f"{self.name} is already running"
        self.port = free_port()
        self.lifetimes += 1
        with self.log_path.open("ab") as log:
            log.write(f"=== start {self.lifetimes} ===\n".encode())
            log.flush()
            env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
            env |= self.env | {"PULSE_METRICS_PORT": str(self.port)}
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.started_at = time.monotonic()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to this worker (ours, by pid) and wait for it to exit."""
        assert self.process is not None
        self.process.send_signal(sig)
        self.exits.append(self.process.wait(60))

    def stop(self) -> int:
        """SIGTERM, as an operator scales down; the exit code."""
        self.kill(signal.SIGTERM)
        return self.exits[-1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def get(self, path: str) -> tuple[int, str] | None:
        """(status, body) of an endpoint, or None while nothing listens."""
        try:
            timeout = aiohttp.ClientTimeout(total=5)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(self.url + path) as response,
            ):
                return response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError, OSError):
            return None

    async def readyz(self) -> dict[str, Any] | None:
        answer = await self.get("/readyz")
        if answer is None:
            return None
        body: dict[str, Any] = orjson.loads(answer[1])
        return body

    async def scrape(self) -> Samples:
        answer = await self.get("/metrics")
        assert answer is not None, f"{self.name}: /metrics does not answer"
        assert answer[0] == 200, f"{self.name}: /metrics {answer}"
        return parse_metrics(answer[1])

    async def wait_ready(self, within: float = 90.0) -> float:
        """Seconds from this lifetime's start until /readyz answers 200 with no lag."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            assert self.alive(), f"{self.name} exited:\n{self.log_tail()}"
            ready = await self.readyz()
            if ready and ready["status"] == "ok" and ready["lag_messages"] == 0:
                return time.monotonic() - self.started_at
            await asyncio.sleep(0.2)
        raise AssertionError(f"{self.name} not ready within {within} s:\n{self.log_tail()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def current_log(self) -> str:
        return self.log().rsplit(f"=== start {self.lifetimes} ===", 1)[-1]

    def recoveries(self) -> list[Recovery]:
        """Every assignment of every lifetime, in order (a lifetime can have several: a new
        member first shares the partitions with a killed one the group has not expelled yet)."""
        found: list[Recovery] = []
        for lifetime, text in enumerate(self.log().split("=== start ")[1:], start=1):
            for parts, records, seconds in RECOVERY.findall(text):
                owned = [p.strip("' ") for p in parts.split(",") if p]
                found.append(Recovery(lifetime, owned, int(records), float(seconds)))
        return found

    def problems(self) -> list[str]:
        """Errors kpi-pulse logged in any lifetime (aiokafka's own ERROR lines, such as a
        coordinator not available yet on a fresh cluster, are its retries, not ours)."""
        return [line for line in self.log().splitlines() if WATCHED_ERROR.match(line)]

    async def wait_assigned(self, within: float = 60.0) -> float:
        """Seconds from this lifetime's start until it logs its assignment (state recovered)."""
        deadline = time.monotonic() + within
        while "assigned [" not in self.current_log():
            assert self.alive(), f"{self.name} exited:\n{self.log_tail()}"
            assert time.monotonic() < deadline, f"{self.name} not assigned within {within} s"
            await asyncio.sleep(0.05)
        return time.monotonic() - self.started_at


WATCHED_ERROR = re.compile(r"^\S+ \S+ (ERROR|CRITICAL) (streams|schemas|asyncio)[.:]")


# --- producing --------------------------------------------------------------------------------


class StreamProducer:
    """Publishes messages in order, keyed as given, each acknowledged (acks=all) before
    `send` returns; a send that fails (a broker down, a leader moving) is sent again, so a
    message may land twice, never zero times. `partitions[i]` is where message i landed."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.producer: AIOKafkaProducer = new_producer(
            bootstrap, linger_ms=5, request_timeout_ms=10_000, retry_backoff_ms=250
        )
        self.partitions: list[int] = []
        self.resent = 0

    async def __aenter__(self) -> StreamProducer:
        await self.producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()

    async def send(
        self,
        messages: Sequence[SimulatedMessage],
        rate: float | None = None,
        partition: int | None = None,
    ) -> None:
        """Send at `rate` messages per second (None: as fast as acknowledgements come)."""
        chunk = 2000 if rate is None else max(1, int(rate / 20))
        started = time.monotonic()
        for first in range(0, len(messages), chunk):
            if rate is not None:
                await asyncio.sleep(max(0.0, started + first / rate - time.monotonic()))
            self.partitions += await self._send_chunk(messages[first : first + chunk], partition)

    async def send_to_partitions(self, messages: Sequence[SimulatedMessage]) -> None:
        """Message i to partition i (the closers)."""
        for partition, message in enumerate(messages):
            await self.send([message], partition=partition)

    async def _send_chunk(
        self, chunk: Sequence[SimulatedMessage], partition: int | None
    ) -> list[int]:
        landed: list[int | None] = [None] * len(chunk)
        todo = list(range(len(chunk)))
        while todo:
            futures: list[tuple[int, asyncio.Future[Any]]] = []
            for index in todo:
                try:
                    future = await self.producer.send(
                        self.topic, chunk[index].value, key=chunk[index].key, partition=partition
                    )
                except KafkaError:
                    break  # no metadata (every broker down): wait, then send the rest again
                futures.append((index, future))
            for index, future in futures:
                with contextlib.suppress(KafkaError):
                    landed[index] = (await future).partition
            failed = [i for i in todo if landed[i] is None]
            if failed:
                self.resent += len([i for i, _ in futures if landed[i] is None])
                await asyncio.sleep(0.5)
            todo = failed
        return [p for p in landed if p is not None]
