"""The shape of the simulated streams that live tests publish relative to the wall clock."""

from __future__ import annotations

FLAT_DAY = 0.0
"""The simulator's `daily_amplitude` for a stream placed relative to `now`: a flat day, so the
stream is the same at whatever hour CI runs. With the default shape the rate follows the hour
(x1.65 at noon UTC, x0.44 at 22:00), and so does what an injected incident pages as: at night a
minute of one region is a handful of orders. CI failed twice on that, each time at night
(test_ops_stack at 22:00 UTC; test_merge_detection at 02:30 UTC, offline replays of their
streams at those hours showed the same)."""
