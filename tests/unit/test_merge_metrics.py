"""The merge stage's /metrics: company-wide KPI values in the workers' families, and its own
counters, read from the stage at scrape time."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streams.core import CompiledCatalog, KpiValue, compile_catalog
from streams.export.metrics import KpiCollector, build_merge_registry

T0 = 1_767_607_200  # 2026-01-05T10:00:00Z


@dataclass
class Stage:
    catalog: CompiledCatalog
    values: list[KpiValue] = field(default_factory=list)
    partials: int = 8
    dropped: int = 1
    published: int = 5
    rebalances: int = 1

    def latest_values(self) -> list[KpiValue]:
        return self.values

    def watermark(self) -> float:
        return T0 + 175.0

    def windows_held(self) -> int:
        return 2


def test_the_merge_stage_exports_company_wide_values_and_its_counters() -> None:
    labels = (("business_unit", "retail"), ("region", "emea"))
    stage = Stage(
        compile_catalog(),
        [
            KpiValue("revenue", "1m", T0 + 60, T0 + 120, labels, Decimal("9.75")),
            KpiValue(
                "gross_margin_ratio",
                "1m",
                T0 + 60,
                T0 + 120,
                labels,
                None,
                Decimal("-4.00"),
                Decimal(0),
            ),
        ],
    )
    text = generate_latest(build_merge_registry(stage)).decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    dims = (("business_unit", "retail"), ("region", "emea"), ("window", "1m"))
    assert samples[("pulse_revenue", dims)] == 9.75
    assert ("pulse_gross_margin_ratio", dims) not in samples  # no value: parts only
    assert samples[("pulse_gross_margin_ratio_numerator", dims)] == -4.0
    assert samples[("pulse_window_end_timestamp_seconds", (("window", "1m"),))] == T0 + 120
    assert samples[("pulse_watermark_timestamp_seconds", ())] == T0 + 175
    assert samples[("pulse_merge_partials_total", ())] == 8
    assert samples[("pulse_merge_partials_dropped_total", ())] == 1
    assert samples[("pulse_merge_values_published_total", ())] == 5
    assert samples[("pulse_merge_windows_held", ())] == 2
    assert samples[("pulse_rebalances_total", ())] == 1


def test_the_merge_stage_metrics_pass_promtool() -> None:
    """Prometheus' own linter finds nothing to say about the stage's /metrics (as about the
    workers'): names, units, counter suffixes, help texts."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found: `make ops-tools` installs Prometheus")
    labels = (("business_unit", "retail"), ("region", "emea"))
    stage = Stage(compile_catalog(), [KpiValue("revenue", "1m", T0, T0 + 60, labels, Decimal(1))])
    text = generate_latest(build_merge_registry(stage))
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert not (checked.stdout + checked.stderr).strip(), checked.stdout + checked.stderr


def test_a_workers_own_values_carry_scope_worker_beside_a_merge_stage() -> None:
    """With a merge stage the rules and boards select scope!="worker": they read the stage's
    company-wide value, and a worker's partial sum stays readable for debugging."""
    labels = (("business_unit", "retail"), ("region", "emea"))
    value = KpiValue("revenue", "1m", 0, 60, labels, Decimal("12.5"))
    samples = {}
    for scope in (None, "worker"):
        registry = CollectorRegistry(auto_describe=False)
        registry.register(KpiCollector(compile_catalog(), lambda: [value], scope))
        text = generate_latest(registry).decode()
        (family,) = [f for f in text_string_to_metric_families(text) if f.name == "pulse_revenue"]
        samples[scope] = [(s.labels, s.value) for s in family.samples]
    base = {"business_unit": "retail", "region": "emea", "window": "1m"}
    assert samples[None] == [(base, 12.5)]
    assert samples["worker"] == [({**base, "scope": "worker"}, 12.5)]
