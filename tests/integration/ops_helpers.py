"""Real Prometheus and Alertmanager for tests: started on free loopback ports with the generated
configuration, stopped (by pid) when the test ends; and a webhook receiver that records what
Alertmanager delivers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from streams.kafka.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy/prometheus/rules"
ALERTMANAGER_CONFIG = ROOT / "deploy/alertmanager/alertmanager.yml"


def binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: `make ops-tools` installs Prometheus and Alertmanager")
    return found


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@contextlib.contextmanager
def _serve(args: list[str], url: str, log: Path, within: float = 20.0) -> Iterator[Server]:
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + within
        while True:
            if process.poll() is not None:
                raise AssertionError(f"{args[0]} exited: {log.read_text()[-2000:]}")
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response,
            ):
                if response.status == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"{args[0]} not ready in {within} s: {log.read_text()}")
            time.sleep(0.1)
        yield Server(url, process, log)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def _server(
    name: str, config: dict[str, Any], directory: Path, flags: list[str]
) -> Iterator[Server]:
    """`name` with `config` written to `directory`, on a free loopback port."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    args = [binary(name), f"--config.file={path}", f"--web.listen-address=127.0.0.1:{port}"]
    with _serve([*args, *flags], f"http://127.0.0.1:{port}", directory / f"{name}.log") as server:
        yield server


def alertmanager(
    config: dict[str, Any], directory: Path
) -> contextlib.AbstractContextManager[Server]:
    """Alertmanager with `config`, its gossip port off."""
    flags = [f"--storage.path={directory / 'data'}", "--cluster.listen-address="]
    return _server("prometheus-alertmanager", config, directory, flags)


def prometheus(
    config: dict[str, Any], directory: Path
) -> contextlib.AbstractContextManager[Server]:
    """Prometheus with `config` (rule files given as absolute paths)."""
    flags = [f"--storage.tsdb.path={directory / 'data'}", "--web.enable-lifecycle"]
    return _server("prometheus", config, directory, flags)


def alertmanager_config_for(webhook: str) -> dict[str, Any]:
    """The generated configuration with its example receivers pointed at `webhook` (what a user
    does) and the grouping delays shortened so a test does not wait for them."""
    config: dict[str, Any] = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = f"{webhook}/{receiver['name']}"
    config["route"].update(group_wait="0s", group_interval="1s", repeat_interval="1h")
    return config


@dataclass
class Delivery:
    receiver: str
    """The path the webhook was called on: the receiver's name."""
    at: float
    """time.time() when it arrived."""
    payload: dict[str, Any]

    @property
    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self.payload["alerts"]
        return alerts


@dataclass
class Webhook:
    """Records every notification POSTed to it."""

    url: str = ""
    deliveries: list[Delivery] = field(default_factory=list)

    def alerts(self, receiver: str | None = None) -> list[tuple[str, float, dict[str, Any]]]:
        """(receiver, arrival time, alert) for every alert of every delivery."""
        return [
            (d.receiver, d.at, alert)
            for d in self.deliveries
            if receiver is None or d.receiver == receiver
            for alert in d.alerts
        ]


@contextlib.asynccontextmanager
async def webhook_receiver() -> AsyncIterator[Webhook]:
    hook = Webhook()

    async def receive(request: web.Request) -> web.Response:
        payload = json.loads(await request.text())
        hook.deliveries.append(Delivery(request.match_info["name"], time.time(), payload))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/{name}", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    hook.url = f"http://127.0.0.1:{port}"
    try:
        yield hook
    finally:
        await runner.cleanup()


async def get_json(url: str) -> Any:
    def fetch() -> Any:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())

    return await asyncio.to_thread(fetch)


async def post_json(url: str, body: Any) -> None:
    def send() -> None:
        request = urllib.request.Request(
            url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200, response.read()

    await asyncio.to_thread(send)
