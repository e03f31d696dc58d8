"""Event-time tumbling windows and the watermark that closes them.

Times are epoch seconds (UTC). A window is `[start, start + size)`. The watermark is the highest
event time seen minus a fixed delay; a window *closes* (its value is final enough to show) when
the watermark reaches its end, and it still accepts events until the watermark passes its end plus
the allowed lateness. Events for windows past that point are *late*: counted and dead-lettered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

NO_WATERMARK = -math.inf


@dataclass(frozen=True, slots=True)
class TumblingWindows:
    """Fixed-size windows aligned to the epoch (so 60 s windows start on the minute, UTC)."""

    size: int

    def start_of(self, timestamp: float) -> int:
        return int(timestamp // self.size) * self.size

    def last_closed_start(self, watermark: float) -> int | None:
        """Start of the newest window whose end is at or before `watermark`, if any."""
        if watermark == NO_WATERMARK:
            return None
        return int(watermark // self.size) * self.size - self.size


@dataclass(slots=True)
class Watermark:
    """Tracks event-time progress of one stream (one source partition)."""

    delay: float
    lateness: float
    max_event_time: float = NO_WATERMARK

    @property
    def value(self) -> float:
        return self.max_event_time - self.delay

    def observe(self, event_time: float) -> None:
        self.max_event_time = max(self.max_event_time, event_time)

    def accepts(self, window_end: float) -> bool:
        """Whether a window ending at `window_end` still takes events."""
        return self.value < window_end + self.lateness
