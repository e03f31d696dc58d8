"""`pulse bench --merge`, part 3: what a restart of the merge stage costs its detection.

A week of hourly company-wide history (plus a few hours) on `pairs` revenue series, fed to the
stage's detection (`StageDetection`) into a plain dict standing for its Faust table; then a fresh
detection restores from that table (its last snapshot, and the feeds logged after it). Printed:
the series, the table's size (what Faust recovers from the changelog) and the restore time. No
broker: the consumer group's join, which a restart also waits for, is measured by the kill tests.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from decimal import Decimal

from streams.core.compiler import CompiledCatalog
from streams.core.kpi_values import KpiValue
from streams.merge.detection import StageDetection

HOUR = 3600
DAY = 86_400
HOURS = 7 * 24 + 5


def restore_week(catalog: CompiledCatalog, pairs: int, say: Callable[[str], None]) -> float:
    """Seconds a restore of a week of hourly history on `pairs` series (and roll-ups) takes."""
    start = int(time.time()) // DAY * DAY - 8 * DAY
    now = start + HOURS * HOUR + 60
    rng = random.Random(20261206)
    table: dict[str, str] = {}
    detection = StageDetection(catalog, max_series=100_000)
    for hour in range(HOURS):
        t = start + hour * HOUR
        shape = 1 + 0.4 * math.sin(2 * math.pi * (hour % 24) / 24)
        values = [
            KpiValue(
                "revenue",
                "1h",
                t,
                t + HOUR,
                (("business_unit", f"bu-{p % 20}"), ("region", f"r-{p // 20}")),
                Decimal(f"{rng.gauss(1000 * shape, 80):.2f}"),
            )
            for p in range(pairs)
        ]
        detection.observe(values, table, now)
    size = sum(len(k) + len(v) for k, v in table.items())
    started = time.perf_counter()
    again = StageDetection(catalog, max_series=100_000)
    again.restore(table)
    took = time.perf_counter() - started
    say(
        f"restore:  {took:.2f} s for {again.restored_series} series with a week of hourly "
        f"history ({again.replayed} feeds replayed after the last snapshot; table "
        f"{len(table)} keys, {size / 1e6:.1f} MB)"
    )
    return took
