"""The page's routes on the metrics server, and the task that samples its sparklines.

`GET /` the page, `GET /page.json` its data (polled by the page every `POLL_S` seconds),
`GET /static/{name}` the committed assets. Everything is read-only; responses say not to cache
the data and forbid anything but this origin's own scripts and styles (no CDN, no inline
script), so the page works on a machine without internet access.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib import resources

import orjson
from aiohttp import web

from streams.detection.watch import AnomalyWatch
from streams.export.page.history import History, PageState
from streams.export.page.snapshot import LagSource, snapshot

SAMPLE_S = 1.0
"""How often the sparklines' history is sampled."""
ASSETS = {
    "page.js": "text/javascript",
    "page.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass
class PageSources:
    """What the page reads: the worker's own state, its watch and consumer lag."""

    state: PageState
    watch: AnomalyWatch | None = None
    lag: LagSource | None = None


def _asset(name: str) -> bytes:
    return resources.files("streams.export.page").joinpath("static", name).read_bytes()


@dataclass
class Page:
    sources: PageSources
    history: History = field(default_factory=History)

    def install(self, app: web.Application) -> None:
        """Add the page's routes to `app` and run the sampler while the app runs."""
        app.router.add_get("/", self._index)
        app.router.add_get("/page.json", self._data)
        app.router.add_get("/static/{name}", self._static)
        app.cleanup_ctx.append(self._sampler)

    def sample(self) -> None:
        self.history.sample(self.sources.state, self.sources.watch, time.monotonic())

    def data(self) -> dict[str, object]:
        self.sample()
        src = self.sources
        return snapshot(src.state, src.watch, self.history, src.lag, time.time())

    async def _sampler(self, _app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(self._sample_forever(), name="page-sampler")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _sample_forever(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(SAMPLE_S)

    async def _index(self, _request: web.Request) -> web.Response:
        return _response(_asset("index.html"), "text/html", cache=False)

    async def _data(self, _request: web.Request) -> web.Response:
        body = orjson.dumps(self.data())
        return _response(body, "application/json", cache=False)

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        kind = ASSETS.get(name)  # only the committed assets: no path ever reaches the disk
        if kind is None:
            raise web.HTTPNotFound(text=f"no asset {name!r}")
        return _response(_asset(name), kind, cache=True)


def _response(body: bytes, kind: str, *, cache: bool) -> web.Response:
    headers = {**HEADERS, "Cache-Control": "max-age=300" if cache else "no-store"}
    return web.Response(body=body, content_type=kind, charset="utf-8", headers=headers)
