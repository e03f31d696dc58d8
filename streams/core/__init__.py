"""The pure core: validation, windows, KPI math, state. No Faust, Kafka or Prometheus import."""

from streams.core.bad_ratio import BadEventGuard
from streams.core.dedupe import Deduper
from streams.core.money import FxTable
from streams.core.partition_state import PartitionState
from streams.core.revenue import RevenueWindows, Series, merge_window, revenue_delta
from streams.core.validation import ValidationLimits, decode_event
from streams.core.windows import NO_WATERMARK, TumblingWindows, Watermark
from streams.core.worker_state import ClosedWindow, SourcePartition, StateConfig, WorkerState

__all__ = [
    "NO_WATERMARK",
    "BadEventGuard",
    "ClosedWindow",
    "Deduper",
    "FxTable",
    "PartitionState",
    "RevenueWindows",
    "Series",
    "SourcePartition",
    "StateConfig",
    "TumblingWindows",
    "ValidationLimits",
    "Watermark",
    "WorkerState",
    "decode_event",
    "merge_window",
    "revenue_delta",
]
