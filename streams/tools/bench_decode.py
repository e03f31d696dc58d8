"""The decode step alone: CPU µs per message of `decode_timed` and of the ceiling's decode.

`python -m streams.tools.bench_decode [MESSAGES] [REPEATS]` (defaults 60000, 5): the bench's
messages (`pulse bench`'s simulator stream, 1% bad; `streams.tools.bench_step.records`) decoded
by the worker's `decode_timed` (the short way for most valid events, the contract's way for the
rest and every rejection) and by the ceiling of `pulse bench` (orjson, then pydantic's
`validate_python`), in this process, alternately. Prints each path's minimum over the repeats
and how many messages each way took; `pulse bench` stays the measure of record.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import orjson
from pydantic import ValidationError

from schemas import event_adapter
from streams.core import decode_timed
from streams.core.fast_decode import fast_decode
from streams.errors import InvalidEvent
from streams.settings import Settings
from streams.tools.bench_step import records


def _cpu_per_message(decode: Callable[[bytes], object], messages: list[bytes]) -> float:
    started = time.process_time()
    for message in messages:
        decode(message)
    return (time.process_time() - started) / len(messages) * 1e6


def main(argv: list[str]) -> None:
    count = int(argv[0]) if argv else 60000
    repeats = int(argv[1]) if len(argv) > 1 else 5
    settings = Settings()
    messages = [r.value for held in records(count, settings).values() for r in held]
    limits = settings.validation_limits
    now = time.time() + 86_400 * 365  # the bench's events are dated before its run

    def worker(raw: bytes) -> object:
        try:
            return decode_timed(raw, limits, now)
        except InvalidEvent:
            return None

    def ceiling(raw: bytes) -> object:
        try:
            return event_adapter.validate_python(orjson.loads(raw))
        except (orjson.JSONDecodeError, ValidationError):
            return None

    short = sum(fast_decode(m) is not None for m in messages)
    best = {"decode_timed": float("inf"), "ceiling": float("inf")}
    for _ in range(repeats):
        best["decode_timed"] = min(best["decode_timed"], _cpu_per_message(worker, messages))
        best["ceiling"] = min(best["ceiling"], _cpu_per_message(ceiling, messages))
    print(
        f"decode, {len(messages)} messages ({short} the short way): decode_timed "
        f"{best['decode_timed']:.2f}, ceiling (orjson + pydantic) {best['ceiling']:.2f} CPU us "
        f"per message (min of {repeats})"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
