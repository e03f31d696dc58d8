"""The live page's data and routes, on a worker state fed by hand (no broker)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import aiohttp
import pytest

from streams.core.compiler import compile_catalog
from streams.core.kpi_values import KpiValue
from streams.detection.watch import AnomalyWatch
from streams.export.http import MetricsServer
from streams.export.page import History, Page, PageSources, snapshot, totals
from streams.export.page.routes import ASSETS

T0 = 1_709_294_400  # 2024-03-01T12:00:00Z
P0, P1 = ("pulse.events", 0), ("pulse.events", 1)
CATALOG = compile_catalog()


def value(kpi, labels, amount, *, num=None, den=None, window="1m", start=T0):
    return KpiValue(
        kpi,
        window,
        start,
        start + 60,
        tuple(labels.items()),
        None if amount is None else Decimal(amount),
        None if num is None else Decimal(num),
        None if den is None else Decimal(den),
    )


def test_totals_add_flows_and_balances_and_divide_summed_ratio_parts():
    retail = {"business_unit": "retail", "region": "eu"}
    online = {"business_unit": "online", "region": "apac"}
    values = [
        value("revenue", retail, "112.38"),
        value("revenue", online, "3.00"),
        value("revenue", retail, "500", window="5m"),
        # margins 0.5 and 0.25: company-wide (50 + 25) / (100 + 100) = 0.375, not their mean
        value("gross_margin_ratio", retail, "0.5", num="50", den="100"),
        value("gross_margin_ratio", online, "0.25", num="25", den="100"),
        value("ar_balance", retail, "1000", window="balance"),
        value("ar_balance", online, "234.5", window="balance"),
        value("order_cycle_time_seconds", {**retail, "quantile": "0.5"}, "60"),
    ]
    got = {(v.kpi, v.window): v.value for v in totals(CATALOG, values)}
    assert got == {
        ("revenue", "1m"): Decimal("115.38"),
        ("revenue", "5m"): Decimal("500"),
        ("gross_margin_ratio", "1m"): Decimal("0.375"),
        ("ar_balance", "balance"): Decimal("1234.5"),
    }  # quantiles do not add up: no tile


def test_snapshot_of_a_state_shows_the_metrics_values(make_state, make_envelope):
    state = make_state()
    for source, events in (
        (P0, [(T0 + 5, "100.00"), (T0 + 70, "1.00")]),  # P0 watermark T0 + 65
        (P1, [(T0 + 20, "7.50"), (T0 + 68, "2.00")]),  # P1 watermark T0 + 63
    ):
        part = state.assign(source)
        for at, amount in events:
            part.apply(make_envelope(at=at, amount=amount))
            state.processed["order_placed"] += 1
    state.rejected["late"] += 3
    data = snapshot(state, None, History(), lambda: [("pulse.events", 0, 4), ("x", 1, 2)], T0)
    tiles = {(t["kpi"], t["window"]): t for t in data["tiles"]}
    revenue = tiles[("revenue", "1m")]
    assert revenue["value"] == 107.5  # 100.00 + 7.50 in [T0, T0 + 60): both partitions closed it
    assert (revenue["start"], revenue["end"]) == (T0, T0 + 60)
    assert revenue["unit"] == "currency"
    assert tiles[("orders", "1m")]["value"] == 2
    assert data["counted"] == 4
    assert data["rejected"] == 3
    assert data["lag"] == {
        "total": 6,
        "partitions": [
            {"topic": "pulse.events", "partition": 0, "lag": 4},
            {"topic": "x", "partition": 1, "lag": 2},
        ],
    }
    assert data["watermark"] == T0 + 63
    assert data["alerts"] == []
    assert data["stale"] == []


def flat(start, amount):
    """Revenue of one instance in two series (totals are rolled up by the watch)."""
    half = Decimal(amount) / 2
    return [
        value("revenue", {"business_unit": "retail", "region": "eu"}, str(half), start=start),
        value("revenue", {"business_unit": "online", "region": "eu"}, str(half), start=start),
    ]


def test_history_keeps_each_scored_instance_once_and_forgets_on_reset():
    watch = AnomalyWatch(CATALOG, windows=frozenset({"1m"}))
    history = History()
    state_like = type("S", (), {"processed": {"order_placed": 0}, "rejected": {}})()
    for i in range(5):
        watch.observe_values(flat(T0 + 60 * i, "100"), clock=T0 + 60 * i + 60)
        history.sample(state_like, watch, float(i))  # type: ignore[arg-type]
        history.sample(state_like, watch, float(i) + 0.5)  # type: ignore[arg-type]
    points = history.series[("revenue", "1m")]
    assert [p.start for p in points] == [T0 + 60 * i for i in range(5)]
    assert all(p.observed == 100.0 for p in points)
    assert all(p.lower <= p.expected <= p.upper for p in points)
    watch.reset()
    history.sample(state_like, watch, 10.0)  # type: ignore[arg-type]
    assert ("revenue", "1m") not in history.series


def test_throughput_is_counted_events_per_second():
    history = History()
    counts = {"order_placed": 0}
    state_like = type("S", (), {"processed": counts, "rejected": {"late": 0}})()
    assert history.throughput() is None
    for second in range(4):
        counts["order_placed"] = 30 * second
        history.sample(state_like, None, float(second))  # type: ignore[arg-type]
    assert history.throughput() == pytest.approx(30.0)


async def test_routes_serve_the_page_its_data_and_only_its_assets(make_state):
    state = make_state()
    page = Page(PageSources(state))
    server = MetricsServer(_empty_registry(), "127.0.0.1", 0, lambda: (True, {}), page=page)
    await server.start()
    try:
        assert server.page_url == f"http://127.0.0.1:{server.port}/"
        async with aiohttp.ClientSession() as session:
            async with session.get(server.page_url) as response:
                body = await response.text()
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/html")
                csp = response.headers["Content-Security-Policy"]
            assert "/static/page.js" in body
            assert "http://" not in body.replace('href="/metrics"', "")  # nothing from elsewhere
            assert "script-src 'self'" in csp
            async with session.get(f"{server.page_url}page.json") as response:
                data = await response.json()
                assert response.headers["Cache-Control"] == "no-store"
            assert data["tiles"] == []  # nothing closed yet
            assert data["partitions"] == 0
            for name in ASSETS:
                async with session.get(f"{server.page_url}static/{name}") as response:
                    assert response.status == 200, name
            for bad in ("index.py", "..%2F__init__.py", "page.js.map"):
                async with session.get(f"{server.page_url}static/{bad}") as response:
                    assert response.status == 404, bad
            async with session.post(f"{server.page_url}page.json") as response:
                assert response.status == 405  # read-only
    finally:
        await server.stop()
    await asyncio.sleep(0)


def _empty_registry():
    from prometheus_client.registry import CollectorRegistry  # noqa: PLC0415

    return CollectorRegistry(auto_describe=False)
