"""The revenue + orders job on Quix Streams (see peer_job): `make bench-peers` runs it in its own
venv.

One `Application` (default settings: RocksDB state with changelog topics, at-least-once), a
deserializer that runs `peer_job.parse`, the event time as the message timestamp, `group_by` the
(business_unit, region, currency) key (Quix's way to aggregate on a key other than the message's:
a repartition topic), a 1-minute tumbling window with `GRACE_SECONDS` of grace, `reduce`.

Quix has no end of input, so `final()` would leave each key's last `GRACE_SECONDS` of windows
open and unreported when the input runs out (with a day of grace: all of them): the job takes
`current()` instead, keeps each window's latest value, and stops once it
has folded `--items` items (the bench knows how many there are). Each window's latest value is
then its final state.
"""

from __future__ import annotations

import tempfile
from decimal import Decimal
from typing import Any

from peer_job import GRACE_SECONDS, WINDOW_SECONDS, Clock, arguments, parse, report
from quixstreams import Application
from quixstreams.models.serializers import Deserializer

MICROS = Decimal(1_000_000)
"""Amounts travel and sit in state as integer millionths (JSON has no decimal; the contract
allows six decimal places, so this is exact)."""


IDLE_SECONDS = 30.0
"""A run that has not folded every item stops after this long without a message (and is wrong)."""


class EventDeserializer(Deserializer):
    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock

    def __call__(self, value: bytes, ctx: Any) -> Any:
        self.clock.seen()
        item = parse(value)
        if item is None:
            return None
        key, at, amount, orders = item
        return {"k": key, "t": int(at.timestamp() * 1000), "a": int(amount * MICROS), "o": orders}


def event_time(value: Any, headers: Any, timestamp: int, timestamp_type: Any) -> int:
    """The event time; 0 for a message the job drops, so that it cannot move Quix's clock."""
    return 0 if value is None else int(value["t"])


def main() -> None:
    args = arguments("quixstreams")
    clock = Clock()
    folded = [0]
    results: dict[tuple[str, int], list[Any]] = {}
    with tempfile.TemporaryDirectory(prefix="quix-state-") as state_dir:
        app = Application(
            broker_address=args.bootstrap,
            consumer_group=args.group,
            auto_offset_reset="earliest",
            state_dir=state_dir,
            loglevel="WARNING",
        )
        topic = app.topic(
            args.topic,
            value_deserializer=EventDeserializer(clock),
            key_deserializer="bytes",
            timestamp_extractor=event_time,
        )

        def initial(value: dict[str, Any]) -> list[int]:
            return count([0, 0], value)

        def count(acc: list[int], value: dict[str, Any]) -> list[int]:
            folded[0] += 1
            if folded[0] >= args.items:
                app.stop()
            return [acc[0] + value["a"], acc[1] + value["o"]]

        def keep(row: dict[str, Any], key: Any, *_: Any) -> None:
            start = int(row["start"]) // 1000
            acc = row["value"]
            results[(key, start)] = [Decimal(acc[0]) / MICROS, acc[1]]

        sdf = app.dataframe(topic)
        sdf = sdf.filter(lambda value: value is not None)
        sdf = sdf.group_by(lambda value: value["k"], name="bu-region-currency")
        sdf = (
            sdf.tumbling_window(duration_ms=WINDOW_SECONDS * 1000, grace_ms=GRACE_SECONDS * 1000)
            .reduce(count, initial)
            .current()
        )
        sdf.update(keep, metadata=True)
        app.run(timeout=IDLE_SECONDS, collect=False)
    ended = "all items" if folded[0] >= args.items else f"idle for {IDLE_SECONDS:.0f} s"
    report("quixstreams", clock.seconds(), folded[0], results, ended)


if __name__ == "__main__":
    main()
