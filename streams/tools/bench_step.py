"""The worker's batch step without a broker: CPU µs per event of `BatchStep.read` + `close`.

`python -m streams.tools.bench_step [EVENTS] [REPEATS] [on|off]` (defaults 60000, 3, off: the
detection). The bench's events (`pulse bench`: the simulator at 50 events per simulated second,
1% bad) are spread over four partitions by key and read in batches of 1250 per partition by a
fresh `Worker`'s batch step, as the worker reads them, with no broker and no sends: what is left
is the CPU time of decoding, counting, closing windows and building the records to send. It
moves far less on a shared machine than `pulse bench` and isolates a change to the hot path;
`pulse bench` stays the measure of record. Prints each repeat and the minimum.
"""

from __future__ import annotations

import logging
import sys
import time
import zlib
from datetime import UTC, datetime, timedelta

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from streams.cli import tune_gc
from streams.settings import Settings
from streams.tools.simulator import SimulationConfig, simulate
from streams.worker.worker import Worker

PARTITIONS = 4
BATCH = 1250
TOPIC = "bench-step"
END = datetime(2026, 12, 1, tzinfo=UTC)
Records = dict[TopicPartition, list["ConsumerRecord[bytes, bytes]"]]


def records(
    events: int, settings: Settings
) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
    """The bench's first `events` messages, by partition (CRC-32 of the key; any hash that
    keeps one key on one partition serves here)."""
    span = timedelta(seconds=events / 50)
    config = SimulationConfig(
        start=END - 4 * span,
        rate=50,
        duration=4 * span.total_seconds(),
        bad_ratio=0.01,
        max_event_bytes=settings.max_event_bytes,
    )
    by_tp: Records = {TopicPartition(TOPIC, p): [] for p in range(PARTITIONS)}
    for _, message in zip(range(events), simulate(config), strict=False):
        tp = TopicPartition(TOPIC, zlib.crc32(message.key) % PARTITIONS)
        held = by_tp[tp]
        held.append(
            ConsumerRecord(TOPIC, tp.partition, len(held), 0, 0, message.key, message.value,
                           None, 0, len(message.value), ())
        )  # fmt: skip
    return by_tp


def measure(by_tp: Records, settings: Settings) -> float:
    """CPU µs per record of one fresh worker's batch step over every record."""
    worker = Worker(settings, "127.0.0.1:1")  # never connected: no `run`
    for tp in by_tp:
        worker.state.assign((tp.topic, tp.partition))
    step, now = worker.step, END.timestamp()
    total = sum(len(held) for held in by_tp.values())
    longest = max(len(held) for held in by_tp.values())
    started = time.process_time()
    for first in range(0, longest, BATCH):
        batch = {tp: held[first : first + BATCH] for tp, held in by_tp.items()}
        out = step.read({tp: held for tp, held in batch.items() if held}, now)
        step.close(out, now, now)
    return 1e6 * (time.process_time() - started) / total


def main(argv: list[str], *, tune: bool = False) -> None:
    """`tune`: collect garbage as `pulse worker` does (`tune_gc`, after the records are built);
    process-wide, so only when run as a program."""
    events = int(argv[0]) if argv else 60000
    repeats = int(argv[1]) if len(argv) > 1 else 3
    detection = len(argv) > 2 and argv[2] == "on"
    logging.getLogger("streams").setLevel(logging.CRITICAL)  # stale sources of a past stream
    settings = Settings(detection=detection, kafka_bootstrap="127.0.0.1:1", input_topics=(TOPIC,))
    by_tp = records(events, settings)
    if tune:
        tune_gc()
    runs = [measure(by_tp, settings) for _ in range(repeats)]
    shown = ", ".join(f"{r:.1f}" for r in runs)
    sys.stdout.write(
        f"batch step, {events} events, detection {'on' if detection else 'off'}: "
        f"{shown} CPU us/event (min {min(runs):.1f})\n"
    )


if __name__ == "__main__":
    main(sys.argv[1:], tune=True)
