"""The revenue + orders job on Bytewax (see peer_job): `make bench-peers` runs it in its own venv.

Bytewax's Kafka source (`tail=False`: it stops at the end of every partition, found by
`enable.partition.eof`), one worker in this process (`run_main`), `fold_window` over 1-minute
tumbling windows on event time with `GRACE_SECONDS` of allowed lateness; at the end of the input
every open window is emitted. Prints `peer_job.report`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import bytewax.operators as op
from bytewax.connectors.kafka import operators as kop
from bytewax.dataflow import Dataflow
from bytewax.operators.windowing import EventClock, TumblingWindower, fold_window
from bytewax.testing import TestingSink, run_main
from confluent_kafka import OFFSET_BEGINNING
from peer_job import (
    GRACE_SECONDS,
    WINDOW_SECONDS,
    Clock,
    Item,
    arguments,
    parse,
    report,
    window_start,
)


def main() -> None:
    args = arguments("bytewax")
    clock = Clock()
    folded = [0]

    def item(message: Any) -> tuple[str, Item] | None:
        clock.seen()
        parsed = parse(message.value)
        return None if parsed is None else (parsed[0], parsed)

    def fold(acc: list[Any], it: Item) -> list[Any]:
        folded[0] += 1
        if acc[0] is None:
            acc[0] = window_start(it[1])
        acc[1] += it[2]
        acc[2] += it[3]
        return acc

    def merge(a: list[Any], b: list[Any]) -> list[Any]:
        return [a[0] if a[0] is not None else b[0], a[1] + b[1], a[2] + b[2]]

    flow = Dataflow("revenue_orders")
    source = kop.input(
        "in",
        flow,
        brokers=[args.bootstrap],
        topics=[args.topic],
        tail=False,
        starting_offset=OFFSET_BEGINNING,
        add_config={"group.id": args.group},
    )
    keyed = op.filter_map("parse", source.oks, item)
    windows = fold_window(
        "sum",
        keyed,
        EventClock(lambda it: it[1], wait_for_system_duration=timedelta(seconds=GRACE_SECONDS)),
        TumblingWindower(
            length=timedelta(seconds=WINDOW_SECONDS), align_to=datetime(2000, 1, 1, tzinfo=UTC)
        ),
        lambda: [None, Decimal(0), 0],
        fold,
        merge,
    )
    out: list[tuple[str, tuple[int, list[Any]]]] = []
    op.output("out", windows.down, TestingSink(out))
    run_main(flow)
    seconds = clock.seconds()
    results = {(key, acc[0]): [acc[1], acc[2]] for key, (_, acc) in out}
    report("bytewax", seconds, folded[0], results)


if __name__ == "__main__":
    main()
