"""The generated Prometheus rules, checked and unit-tested by the real `promtool`.

Service, threshold and recording rules have hand-written promtool tests committed in
deploy/prometheus/tests/. The anomaly alert exists once per KPI; its cases are built here for
every KPI of the catalog from the table below, written by hand (titles, boards, how each unit is
quoted), so a change to the rules' wording or links shows up as a failing case.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.core.catalog import CATALOG

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy/prometheus/rules"
TESTS = ROOT / "deploy/prometheus/tests"
GRAFANA = "http://localhost:3000"

# kpi: (title, board, window, labels of the series, observed, lower, upper as quoted)
# Values: currency 1234.567 → "1234.57"; count 42 → "42"; ratio 0.42 → "42%";
# days (exported in seconds) 1066176 → "12d 8h 9m 36s"; seconds 5400 → "1h 30m 0s";
# score 12.34 → "12.3".
BU_REGION = {"business_unit": "retail", "region": "emea"}
CASES: dict[str, tuple[str, str, str, dict[str, str], str, str, str]] = {
    "revenue": ("Revenue", "pulse-sales", "1m", BU_REGION, "1234.57", "2000.00", "3000.00"),
    "cogs": ("COGS", "pulse-sales", "1m", BU_REGION, "1234.57", "2000.00", "3000.00"),
    "orders": ("Orders", "pulse-sales", "1m", BU_REGION, "42", "50", "80"),
    "average_order_value": (
        "Average order value",
        "pulse-sales",
        "1m",
        BU_REGION,
        "1234.57",
        "2000.00",
        "3000.00",
    ),
    "gross_margin_ratio": ("Gross margin", "pulse-sales", "1m", BU_REGION, "42%", "50%", "60%"),
    "opex": (
        "OpEx",
        "pulse-spend",
        "1m",
        {**BU_REGION, "cost_center": "ops", "category": "travel"},
        "1234.57",
        "2000.00",
        "3000.00",
    ),
    "operating_margin_ratio": (
        "Operating margin",
        "pulse-spend",
        "1m",
        BU_REGION,
        "42%",
        "50%",
        "60%",
    ),
    "csat_ratio": ("CSAT", "pulse-customer", "1m", BU_REGION, "42%", "50%", "60%"),
    "nps": ("NPS", "pulse-customer", "1m", BU_REGION, "12.3", "20.0", "30.0"),
    "on_time_delivery_ratio": (
        "On-time delivery",
        "pulse-delivery",
        "1m",
        BU_REGION,
        "42%",
        "50%",
        "60%",
    ),
    "order_cycle_time_seconds": (
        "Order cycle time",
        "pulse-delivery",
        "1m",
        {**BU_REGION, "quantile": "0.95"},
        "1h 30m 0s",
        "2h 0m 0s",
        "3h 0m 0s",
    ),
    "ar_balance": (
        "AR balance",
        "pulse-working-capital",
        "balance",
        BU_REGION,
        "1234.57",
        "2000.00",
        "3000.00",
    ),
    "ap_balance": (
        "AP balance",
        "pulse-working-capital",
        "balance",
        BU_REGION,
        "1234.57",
        "2000.00",
        "3000.00",
    ),
    "inventory_value": (
        "Inventory value",
        "pulse-working-capital",
        "balance",
        BU_REGION,
        "1234.57",
        "2000.00",
        "3000.00",
    ),
    "working_capital": (
        "Working capital",
        "pulse-working-capital",
        "balance",
        BU_REGION,
        "1234.57",
        "2000.00",
        "3000.00",
    ),
    "roi_ratio": (
        "ROI",
        "pulse-spend",
        "cumulative",
        {"initiative_id": "crm"},
        "42%",
        "50%",
        "60%",
    ),
    "dso_days": (
        "DSO",
        "pulse-working-capital",
        "30d",
        BU_REGION,
        "12d 8h 9m 36s",
        "20d 0h 0m 0s",
        "30d 0h 0m 0s",
    ),
    "dpo_days": (
        "DPO",
        "pulse-working-capital",
        "30d",
        BU_REGION,
        "12d 8h 9m 36s",
        "20d 0h 0m 0s",
        "30d 0h 0m 0s",
    ),
    "dio_days": (
        "DIO",
        "pulse-working-capital",
        "30d",
        BU_REGION,
        "12d 8h 9m 36s",
        "20d 0h 0m 0s",
        "30d 0h 0m 0s",
    ),
    "cash_conversion_cycle_days": (
        "Cash conversion cycle",
        "pulse-working-capital",
        "30d",
        BU_REGION,
        "12d 8h 9m 36s",
        "20d 0h 0m 0s",
        "30d 0h 0m 0s",
    ),
    "budget_variance_ratio": (
        "Budget variance",
        "pulse-spend",
        "1mo",
        {"cost_center": "ops"},
        "42%",
        "50%",
        "60%",
    ),
}
RAW = {  # the numbers behind the quoted strings, per quoted form
    "1234.57": 1234.567,
    "2000.00": 2000,
    "3000.00": 3000,
    "42": 42,
    "50": 50,
    "80": 80,
    "42%": 0.42,
    "50%": 0.5,
    "60%": 0.6,
    "12.3": 12.34,
    "20.0": 20,
    "30.0": 30,
    "1h 30m 0s": 5400,
    "2h 0m 0s": 7200,
    "3h 0m 0s": 10800,
    # days KPIs are exported in seconds: 12 d 8 h 9 m 36 s = 12.34 x 86400
    "12d 8h 9m 36s": 1_066_176,
    "20d 0h 0m 0s": 20 * 86400,
    "30d 0h 0m 0s": 30 * 86400,
}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool not found: `make ops-tools` installs Prometheus and Alertmanager")
    return found


def run_promtool(*args: str) -> str:
    done = subprocess.run([promtool(), *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((RULES / "pulse-alerts.rules.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_the_generated_rules_pass_promtool_check_with_its_linter() -> None:
    out = run_promtool("check", "rules", *map(str, sorted(RULES.glob("*.yml"))))
    assert "SUCCESS" in out


def test_the_prometheus_configs_pass_promtool_check(tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    # rule files are relative to the config file: check it where it lives
    assert all((ROOT / "deploy/prometheus" / f).parent.is_dir() for f in config["rule_files"])
    run_promtool("check", "config", str(ROOT / "deploy/prometheus/prometheus.yml"))


def test_the_committed_promtool_tests_pass() -> None:
    files = sorted(TESTS.glob("*.test.yml"))
    assert len(files) >= 3
    run_promtool("test", "rules", *map(str, files))


def _series(name: str, kpi: str, window: str, labels: dict[str, str], **extra: str) -> str:
    pairs = {"job": "pulse", "instance": "w1", "kpi": kpi, "window": window, **labels, **extra}
    return name + "{" + ", ".join(f'{k}="{v}"' for k, v in pairs.items()) + "}"


def _anomaly_case(kpi: str, labels: dict[str, str]) -> dict[str, Any]:
    title, board, window, _, observed, lower, upper = CASES[kpi]
    where = "".join(
        f" {d}={labels[d]}"
        for d in (*next(k for k in CATALOG.kpis if k.name == kpi).dims, "quantile")
        if d in labels
    )
    query = f"?var-window={window}" if window in ("1m", "5m", "1h", "1d") else "?orgId=1"
    query += "".join(f"&var-{d}={labels[d]}" for d in ("business_unit", "region") if d in labels)
    inputs = [
        (_series("pulse_kpi_observed", kpi, window, labels), RAW[observed]),
        (_series("pulse_kpi_expected_lower", kpi, window, labels), RAW[lower]),
        (_series("pulse_kpi_expected_upper", kpi, window, labels), RAW[upper]),
        (_series("pulse_kpi_anomaly_active", kpi, window, labels, severity="critical"), 1),
    ]
    firing = {
        "exp_labels": {
            "alertname": "PulseKpiAnomaly",
            "job": "pulse",
            "instance": "w1",
            "kpi": kpi,
            "window": window,
            **labels,
            "severity": "critical",
            "domain": board.removeprefix("pulse-").replace("-", "_"),
        },
        "exp_annotations": {
            "summary": f"{title} ({window}){where} is outside its expected band",
            "description": f"{title} ({window}){where} is {observed}; expected {lower} to "
            f"{upper} (worker w1; the anomaly topic carries the explanation).",
            "dashboard": f"{GRAFANA}/d/{board}{query}",
            "runbook_url": "docs/runbook.md#pulsekpianomaly",
        },
    }
    return {
        "name": f"anomaly on {kpi} {labels}",
        "interval": "15s",
        "input_series": [{"series": s, "values": f"{v}x10"} for s, v in inputs],
        "alert_rule_test": [
            # `for: 30s`: pending at 15s, firing at 30s
            {"eval_time": "15s", "alertname": "PulseKpiAnomaly", "exp_alerts": []},
            {"eval_time": "30s", "alertname": "PulseKpiAnomaly", "exp_alerts": [firing]},
        ],
    }


def test_every_kpi_has_an_anomaly_case() -> None:
    assert set(CASES) == {k.name for k in CATALOG.kpis}
    rules = [r for r in alert_rules() if r["alert"] == "PulseKpiAnomaly"]
    assert sorted(r["labels"]["kpi"] for r in rules) == sorted(CASES)


def test_anomaly_alerts_of_every_kpi_fire_at_their_for_boundary_with_band_and_links(
    tmp_path: Path,
) -> None:
    tests = [_anomaly_case(kpi, case[3]) for kpi, case in CASES.items()]
    # a company total (no dimension labels): the band is looked up with labels absent
    tests.append(_anomaly_case("revenue", {}))
    # a per-region roll-up
    tests.append(_anomaly_case("revenue", {"region": "amer"}))
    spec = {
        "rule_files": [str(RULES / "pulse-alerts.rules.yml")],
        "evaluation_interval": "15s",
        "tests": tests,
    }
    path = tmp_path / "anomalies.test.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    run_promtool("test", "rules", str(path))


def test_an_anomaly_that_closes_keeps_firing_for_a_minute_then_resolves(tmp_path: Path) -> None:
    case = _anomaly_case("revenue", BU_REGION)
    active = case["input_series"][3]
    active["values"] = "1x4 0x20"  # open until 60s; closed (0) from 75s on
    firing = case["alert_rule_test"][1]["exp_alerts"]
    case["alert_rule_test"] = [
        {"eval_time": "2m", "alertname": "PulseKpiAnomaly", "exp_alerts": firing},
        {"eval_time": "2m15s", "alertname": "PulseKpiAnomaly", "exp_alerts": []},
    ]
    # an open alert of severity "none" does not exist: the closed series never fires
    spec = {
        "rule_files": [str(RULES / "pulse-alerts.rules.yml")],
        "evaluation_interval": "15s",
        "tests": [case],
    }
    path = tmp_path / "keep.test.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    run_promtool("test", "rules", str(path))


def test_every_service_and_threshold_rule_is_exercised_by_a_committed_case() -> None:
    """Each (alert, severity, kpi) of the rules appears in some committed test's expectations,
    and each test asserts both sides of the `for:` boundary (an empty and a firing eval)."""
    wanted = {
        (r["alert"], r["labels"].get("severity"), r["labels"].get("kpi"))
        for r in alert_rules()
        if r["alert"] != "PulseKpiAnomaly"
    }
    seen: set[tuple[str, str | None, str | None]] = set()
    for path in TESTS.glob("*.test.yml"):
        for test in yaml.safe_load(path.read_text())["tests"]:
            evals = test.get("alert_rule_test", [])
            if evals:
                assert any(not e["exp_alerts"] for e in evals), test["name"]
            for e in evals:
                for alert in e["exp_alerts"]:
                    labels = alert["exp_labels"]
                    seen.add((e["alertname"], labels.get("severity"), labels.get("kpi")))
                    # A rule without a `kpi` label may still carry one from its expression
                    # (PulsePeriodRestated, per KPI): any firing case of it exercises it.
                    seen.add((e["alertname"], labels.get("severity"), None))
    assert wanted - seen == set()


def test_every_alert_has_severity_summary_description_dashboard_and_runbook() -> None:
    runbook = (ROOT / "docs/runbook.md").read_text()
    anchors = {h.lower() for h in re.findall(r"^## (\w+)$", runbook, flags=re.MULTILINE)}
    for rule in alert_rules():
        assert "for" in rule, rule["alert"]
        assert "keep_firing_for" in rule, rule["alert"]
        has_severity = "severity" in rule["labels"] or "group_left (severity" in rule["expr"]
        assert has_severity, rule["alert"]
        notes = rule["annotations"]
        assert set(notes) == {"summary", "description", "dashboard", "runbook_url"}
        assert notes["dashboard"].startswith(f"{GRAFANA}/d/pulse-")
        assert notes["runbook_url"].split("#")[1] in anchors, rule["alert"]


def test_the_runbook_has_first_checks_for_every_kpi() -> None:
    runbook = (ROOT / "docs/runbook.md").read_text()
    rows = set(re.findall(r"^\| (\w+) \|", runbook, flags=re.MULTILINE))
    assert {k.name for k in CATALOG.kpis} <= rows
