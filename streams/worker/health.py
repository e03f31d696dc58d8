"""Whether a worker is alive and ready, as `/healthz` and `/readyz` answer it."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka import TopicPartition

from streams.errors import FatalError, RecoveryFailed

log = logging.getLogger("streams.worker")


@dataclass
class Health:
    """What the consume loop reports as it goes, and what the probes make of it.

    Alive while the loop runs and keeps coming round (a stuck or dead loop fails after
    `liveness_timeout` seconds; recovering partitions counts as alive however long it takes),
    and never after a fatal failure. Ready when alive, partitions are assigned, their state is
    recovered and the worker is caught up (at most `batch_max_records` behind in all).
    """

    liveness_timeout: float
    batch_max_records: int
    running: bool = False
    recovering: bool = False
    beat: float = field(default_factory=time.monotonic)
    """When the consume loop last came round."""
    lag: dict[TopicPartition, int] = field(default_factory=dict)
    """Messages behind per owned partition (from the broker's high-water mark)."""
    fatal: FatalError | None = None
    """A failure in the rebalance listener (which aiokafka would only log): the loop raises it
    before reading anything more."""

    def liveness(self) -> tuple[bool, dict[str, object]]:
        quiet = time.monotonic() - self.beat
        ok = self.running and (self.recovering or quiet < self.liveness_timeout)
        ok = ok and self.fatal is None
        details: dict[str, object] = {"running": self.running}
        details["loop_quiet_seconds"] = round(quiet, 3)
        if self.fatal is not None:
            details["fatal"] = str(self.fatal)
        return ok, details

    def readiness(
        self, owned: int, assigned: bool, guarantee: str | None
    ) -> tuple[bool, dict[str, object]]:
        alive, _ = self.liveness()
        recovered = assigned and not self.recovering
        behind = sum(self.lag.values())
        caught_up = owned > 0 and len(self.lag) >= owned and behind <= self.batch_max_records
        checks = {"alive": alive, "assigned": owned > 0, "recovered": recovered}
        checks["caught_up"] = caught_up
        details: dict[str, object] = {**checks, "partitions": owned, "lag_messages": behind}
        details["guarantee"] = guarantee
        return all(checks.values()), details

    def fail(self, doing: str, partitions: Iterable[TopicPartition], exc: Exception) -> None:
        """Keep a rebalance-listener failure as fatal: the probes fail at once and the loop
        raises it (`RecoveryFailed`, naming the partitions and the cause) before reading on."""
        names = ", ".join(sorted(f"{tp.topic}[{tp.partition}]" for tp in partitions))
        log.error("%s %s failed: %r", doing, names, exc, exc_info=exc)
        if self.fatal is None:
            self.fatal = RecoveryFailed(
                f"{doing} partitions {names} failed: {exc!r}; stopping rather than consuming "
                "on partly rebuilt state (a restart recovers them again)"
            )
            self.fatal.__cause__ = exc
