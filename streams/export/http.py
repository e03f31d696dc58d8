"""The worker's HTTP endpoint: `/metrics` for Prometheus (text or OpenMetrics, gzip when
accepted), `/healthz` (liveness) and `/readyz` (readiness) for an orchestrator, and, when given
one, the live KPI page at `/` (`streams.export.page`).

Served from the worker's own event loop, so a scrape never races the state it reads.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Mapping

from aiohttp import web
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry

from streams.errors import ConfigError
from streams.export.page import Page

Probe = Callable[[], tuple[bool, Mapping[str, object]]]
"""Answers a probe: (passing, details shown as JSON)."""


class MetricsServer:
    def __init__(
        self,
        registry: CollectorRegistry,
        host: str,
        port: int,
        healthy: Probe,
        ready: Probe | None = None,
        *,
        page: Page | None = None,
    ) -> None:
        self._registry = registry
        self._host = host
        self._port = port
        self._healthy = healthy
        self._ready = ready
        self._page = page
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}/metrics"

    @property
    def page_url(self) -> str | None:
        """Where the live KPI page is (None: no page served)."""
        return f"http://{self._host}:{self.port}/" if self._page is not None else None

    async def start(self) -> None:
        """Bind (port 0 picks a free one; `port` then holds it). Raises `ConfigError` if taken."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._health)
        app.router.add_get("/readyz", self._readiness)
        if self._page is not None:
            self._page.install(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        try:
            await site.start()
        except OSError as exc:
            await self.stop()
            raise ConfigError(
                f"cannot serve /metrics on {self._host}:{self._port} (PULSE_METRICS_HOST/"
                f"PULSE_METRICS_PORT, --metrics-port): {exc.strerror or exc}"
            ) from exc
        self.port = int(self._runner.addresses[0][1])  # the real one when asked for port 0

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        """The text format, or OpenMetrics when the scraper asks for it; gzip when accepted
        (client_python's own encoders, as its HTTP server negotiates them)."""
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        body = encode(self._registry)
        headers = {"Content-Type": content_type}
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        return web.Response(body=body, headers=headers)

    async def _health(self, _request: web.Request) -> web.Response:
        return _answer(*self._healthy())

    async def _readiness(self, _request: web.Request) -> web.Response:
        return _answer(*(self._ready() if self._ready else self._healthy()))


def _answer(ok: bool, details: Mapping[str, object]) -> web.Response:
    body = {"status": "ok" if ok else "failing", **details}
    return web.json_response(body, status=200 if ok else 503)
