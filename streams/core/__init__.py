"""The pure core: validation, catalog, windows, KPI math, state. No Faust, Kafka or Prometheus
import."""

from streams.core.bad_ratio import BadEventGuard
from streams.core.catalog import CATALOG, Catalog, Kpi, Measure
from streams.core.compiler import CatalogError, CompiledCatalog, compile_catalog
from streams.core.dedupe import Deduper
from streams.core.finalize import Finalizer
from streams.core.kpi_values import KpiValue
from streams.core.money import FxTable
from streams.core.partition_state import PartitionState, Windows
from streams.core.validation import ValidationLimits, decode_event, decode_timed
from streams.core.windows import NO_WATERMARK, BusinessDay, CalendarMonth, Tumbling, Watermark
from streams.core.worker_state import SourcePartition, StateConfig, WorkerState

__all__ = [
    "CATALOG",
    "NO_WATERMARK",
    "BadEventGuard",
    "BusinessDay",
    "CalendarMonth",
    "Catalog",
    "CatalogError",
    "CompiledCatalog",
    "Deduper",
    "Finalizer",
    "FxTable",
    "Kpi",
    "KpiValue",
    "Measure",
    "PartitionState",
    "SourcePartition",
    "StateConfig",
    "Tumbling",
    "ValidationLimits",
    "Watermark",
    "Windows",
    "WorkerState",
    "compile_catalog",
    "decode_event",
    "decode_timed",
]
