"""The live KPI page at `/` on the metrics port: a JSON snapshot of the state the worker owns
(`snapshot`), the recent points of each company-wide series with its band (`history`), the
aiohttp routes and the sampler task (`routes`), and hand-written static assets (`static/`: HTML,
CSS, JS drawing SVG sparklines; no CDN, nothing fetched from elsewhere).

Read-only and built from the same objects `/metrics` reads (`WorkerState`, the `AnomalyWatch`,
consumer lag): the page never keeps a value of its own that /metrics could contradict.
"""

from streams.export.page.history import History, Point
from streams.export.page.routes import Page, PageSources
from streams.export.page.snapshot import snapshot, totals

__all__ = ["History", "Page", "PageSources", "Point", "snapshot", "totals"]
