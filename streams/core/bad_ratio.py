"""The bad-event ratio limit: stop loudly, not dead-letter a whole stream after a bad deploy."""

from __future__ import annotations

from collections import deque

from streams.errors import BadEventRatioExceeded


class BadEventGuard:
    """Raises once more than `max_ratio` of the last `window` events (at least) were bad.

    Counts per batch, so the window is approximate by up to one batch.
    """

    def __init__(self, max_ratio: float, window: int) -> None:
        self.max_ratio = max_ratio
        self.window = window
        self._batches: deque[tuple[int, int]] = deque()
        self._total = 0
        self._bad = 0

    def observe(self, total: int, bad: int) -> None:
        """Record a batch of `total` events, `bad` of them bad. Raises `BadEventRatioExceeded`."""
        if total == 0:
            return
        self._batches.append((total, bad))
        self._total += total
        self._bad += bad
        while self._batches and self._total - self._batches[0][0] >= self.window:
            old_total, old_bad = self._batches.popleft()
            self._total -= old_total
            self._bad -= old_bad
        if self._total >= self.window and self._bad > self.max_ratio * self._total:
            raise BadEventRatioExceeded(
                f"{self._bad} of the last {self._total} events were invalid "
                f"(limit {self.max_ratio:.0%}, PULSE_MAX_BAD_RATIO); stopping instead of "
                "dead-lettering the stream. Check the publishers and the dead-letter topic."
            )
