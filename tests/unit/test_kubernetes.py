"""deploy/kubernetes/ checked offline: every object against the Kubernetes API schemas (strict:
an unknown or misspelled field fails) of the oldest and newest versions we state, and the
objects against the service they run: real PULSE_* settings, probe paths the worker serves on
the port it listens on, the image's user, the lag metric the worker exports.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser
from prometheus_client import CollectorRegistry, generate_latest

from streams.export.http import MetricsServer
from streams.export.metrics import build_registry
from streams.settings import ENV_PREFIX, Settings, unknown_variables

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "deploy/kubernetes"
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
"""The API versions the manifests are valid for: the oldest and newest checked."""
CUSTOM_KINDS = {"Kustomization", "PodMonitor"}
"""Not in the Kubernetes API schemas: checked by the tests below instead."""


def load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


OBJECTS = {
    f"{path.relative_to(MANIFESTS)}#{n}": document
    for path in sorted(MANIFESTS.rglob("*.yaml"))
    for n, document in enumerate(load(path))
}


def the(kind: str) -> dict[str, Any]:
    (found,) = [o for o in OBJECTS.values() if o["kind"] == kind]
    return found


DEPLOYMENT = the("Deployment")
POD = DEPLOYMENT["spec"]["template"]
(CONTAINER,) = POD["spec"]["containers"]
PORTS = {p["name"]: p["containerPort"] for p in CONTAINER["ports"]}


def settings_of(variables: dict[str, str]) -> Settings:
    """The worker's settings from these variables, as it reads them at start."""
    assert not unknown_variables(variables), unknown_variables(variables)
    return Settings(**{k.removeprefix(ENV_PREFIX).lower(): v for k, v in variables.items()})


def pulse_variables() -> dict[str, str]:
    """Every PULSE_* variable a worker pod gets with its value: the ConfigMap, then the
    container's `env` (those from a Secret, `valueFrom`, are checked by name only)."""
    (source,) = CONTAINER["envFrom"]
    assert source["configMapRef"]["name"] == the("ConfigMap")["metadata"]["name"]
    variables = dict(the("ConfigMap")["data"])
    variables |= {e["name"]: e["value"] for e in CONTAINER.get("env", []) if "value" in e}
    return {k: v for k, v in variables.items() if k.startswith(ENV_PREFIX)}


def test_variables_from_secrets_are_real_settings_too():
    names = {e["name"]: "" for e in CONTAINER.get("env", []) if "valueFrom" in e}
    assert not unknown_variables(names)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("name", [n for n, o in OBJECTS.items() if o["kind"] not in CUSTOM_KINDS])
def test_each_object_is_valid_for_the_kubernetes_api(name, version):
    kubernetes_validate.validate(OBJECTS[name], version, strict=True)


def test_the_schemas_do_catch_a_misspelled_field():
    broken = yaml.safe_load(yaml.safe_dump(DEPLOYMENT))
    broken["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_the_kustomization_lists_every_core_manifest():
    listed = set(the("Kustomization")["resources"])
    files = {p.name for p in MANIFESTS.glob("*.yaml") if p.name != "kustomization.yaml"}
    assert listed == files


def test_every_pulse_variable_is_a_real_setting_with_a_valid_value():
    variables = pulse_variables()
    assert variables
    settings = settings_of(variables)
    # Reachable from Prometheus and the kubelet, on the port the pod declares.
    assert settings.metrics_host == "0.0.0.0"
    assert settings.metrics_port == PORTS["metrics"]
    assert settings.log_format == "json"


def test_the_settings_check_does_catch_a_misspelled_variable():
    with pytest.raises(AssertionError, match="PULSE_METRICS_PROT"):
        settings_of({"PULSE_METRICS_PROT": "9464"})


def probe(name: str) -> tuple[str, int]:
    get = CONTAINER[name]["httpGet"]
    port = get["port"]
    return get["path"], PORTS[port] if isinstance(port, str) else port


def test_liveness_and_startup_ask_healthz_and_readiness_readyz_on_the_metrics_port():
    port = settings_of(pulse_variables()).metrics_port
    assert probe("livenessProbe") == ("/healthz", port)
    assert probe("startupProbe") == ("/healthz", port)
    assert probe("readinessProbe") == ("/readyz", port)


async def test_the_worker_endpoint_answers_each_probe_by_its_own_verdict():
    """A real `MetricsServer`: liveness passing while readiness fails, as while catching up."""
    server = MetricsServer(
        CollectorRegistry(), "127.0.0.1", 0, lambda: (True, {}), lambda: (False, {})
    )
    await server.start()
    try:
        statuses = {}
        async with aiohttp.ClientSession() as session:
            for name in ("livenessProbe", "readinessProbe", "startupProbe"):
                path, _ = probe(name)
                async with session.get(f"http://127.0.0.1:{server.port}{path}") as response:
                    statuses[name] = response.status
    finally:
        await server.stop()
    assert statuses == {"livenessProbe": 200, "readinessProbe": 503, "startupProbe": 200}


def test_the_pod_runs_as_the_images_numeric_user_with_a_read_only_root():
    dockerfile = DockerfileParser(path=str(REPO / "deploy/docker/Dockerfile"))
    users = [i["value"] for i in dockerfile.structure if i["instruction"] == "USER"]
    uid, gid = (int(part) for part in users[-1].split(":"))
    pod = POD["spec"]["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert (pod["runAsUser"], pod["runAsGroup"]) == (uid, gid)
    assert pod["seccompProfile"]["type"] == "RuntimeDefault"
    container = CONTAINER["securityContext"]
    assert container["readOnlyRootFilesystem"] is True
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"]["drop"] == ["ALL"]


def test_requests_and_limits_are_set_and_limits_cover_requests():
    def amount(text: str) -> float:
        units = {"m": 1e-3, "Mi": 2**20, "Gi": 2**30, "": 1}
        match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(text))
        assert match, text
        return float(match[1]) * units[match[2]]

    resources = CONTAINER["resources"]
    for kind in ("cpu", "memory"):
        assert amount(resources["limits"][kind]) >= amount(resources["requests"][kind]) > 0


def test_the_image_tag_is_the_project_version():
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert CONTAINER["image"] == f"kpi-pulse:{version}"


def pod_labels_match(selector: dict[str, str]) -> bool:
    return selector.items() <= POD["metadata"]["labels"].items()


def test_service_budget_and_podmonitor_select_the_worker_pods_and_its_port():
    assert DEPLOYMENT["spec"]["selector"]["matchLabels"] == POD["metadata"]["labels"]
    service = the("Service")
    assert pod_labels_match(service["spec"]["selector"])
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] in PORTS
    assert pod_labels_match(the("PodDisruptionBudget")["spec"]["selector"]["matchLabels"])
    monitor = the("PodMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert pod_labels_match(monitor["spec"]["selector"]["matchLabels"])
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] in PORTS
    assert endpoint["path"] == "/metrics"
    annotations = POD["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == PORTS["metrics"]
    assert annotations["prometheus.io/path"] == "/metrics"


def test_the_autoscaler_scales_the_deployment_on_the_lag_metric_the_worker_exports(make_state):
    hpa = the("HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", DEPLOYMENT["metadata"]["name"])
    (metric,) = hpa["spec"]["metrics"]
    name = metric["external"]["metric"]["name"]
    selector = metric["external"]["metric"]["selector"]["matchLabels"]
    # The exposition of a worker owning one partition 42 messages behind.
    topic = settings_of(pulse_variables()).input_topics[0]
    exposition = generate_latest(build_registry(make_state(), lag=lambda: [(topic, 0, 42)]))
    line = f'{name}{{partition="0",topic="{selector["topic"]}"}} 42.0'
    assert line in exposition.decode().splitlines()
    assert hpa["spec"]["maxReplicas"] >= hpa["spec"]["minReplicas"] >= 2


def test_no_object_names_a_namespace():
    """The namespace is the installer's choice (kubectl -n, kustomize)."""
    assert not [n for n, o in OBJECTS.items() if "namespace" in o.get("metadata", {})]
