"""docker-compose.yml is wired right, checked without Docker.

No Docker engine runs where these tests run, so the stack is never started here. Instead they read
the compose file, the configs it mounts and the Dockerfile it builds, and check that they name
each other correctly: service names, ports, mounted paths, PULSE_* settings. Renaming a service,
moving a mounted file, changing a port on one side only or misspelling a variable fails a test.
Where the real tools are installed (`promtool`, `amtool`) the mounted configs are checked by them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from streams.settings import ENV_PREFIX, Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"

KAFKA, KAFKA_INIT = "kafka", "kafka-init"
WORKERS = ("worker-1", "worker-2")
MERGE = "merge"
SIMULATOR = "simulator"
PROMETHEUS, ALERTMANAGER, GRAFANA = "prometheus", "alertmanager", "grafana"
IMAGES = {  # service -> image repository it must run
    KAFKA: "apache/kafka",
    PROMETHEUS: "prom/prometheus",
    ALERTMANAGER: "prom/alertmanager",
    GRAFANA: "grafana/grafana",
}
# Where each server listens inside its container unless its command says otherwise.
DEFAULT_LISTEN_PORTS = {PROMETHEUS: 9090, ALERTMANAGER: 9093, GRAFANA: 3000}
PUBLISHED = {PROMETHEUS: 9090, ALERTMANAGER: 9093, GRAFANA: 3000}  # host port of each UI

PROMETHEUS_CONFIG = REPO / "deploy/prometheus/prometheus.compose.yml"
RULES_DIR = REPO / "deploy/prometheus/rules"
ALERTMANAGER_CONFIG = REPO / "deploy/alertmanager/alertmanager.yml"
GRAFANA_PROVISIONING = REPO / "grafana/provisioning"
GRAFANA_DASHBOARDS = REPO / "grafana/dashboards"
GRAFANA_DATASOURCE = GRAFANA_PROVISIONING / "datasources/prometheus.yml"
DATASOURCE_UID = "pulse-prometheus"  # what the generated dashboards refer to
DASHBOARD_FOLDER = "kpi-pulse"  # what the README tells users to open
# Datasource uids Grafana provides itself.
BUILTIN_DATASOURCES = {"grafana", "-- Grafana --", "-- Mixed --", "-- Dashboard --"}


def _load_compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict), "docker-compose.yml is not a mapping"
    return document


COMPOSE = _load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE.get("services") or {}


# --- reading compose the way Docker does -------------------------------------------------------


@dataclass(frozen=True)
class Mount:
    service: str
    spec: str
    host: Path
    target: PurePosixPath
    read_only: bool


@dataclass(frozen=True)
class Port:
    host_ip: str
    host_port: int
    container_port: int


def service(name: str) -> dict[str, Any]:
    assert name in SERVICES, f"docker-compose.yml has no service {name!r} ({sorted(SERVICES)})"
    return SERVICES[name]


def bind_mounts(name: str) -> list[Mount]:
    """Bind mounts of a service, host paths resolved against the compose file's directory."""
    mounts = []
    for volume in service(name).get("volumes") or []:
        if isinstance(volume, str):
            source, _, rest = volume.partition(":")
            target, _, mode = rest.partition(":")
            if not source.startswith((".", "/")):
                continue  # a named volume
            read_only = "ro" in mode.split(",")
        else:
            if volume.get("type") != "bind":
                continue
            source, target = volume["source"], volume["target"]
            read_only = bool(volume.get("read_only"))
        host = (COMPOSE_FILE.parent / source).resolve()
        mounts.append(Mount(name, str(volume), host, PurePosixPath(target), read_only))
    return mounts


def host_path(name: str, container_path: str | PurePosixPath) -> Path:
    """The host file a container path of `name` shows, through its bind mounts."""
    path = PurePosixPath(container_path)
    for mount in bind_mounts(name):
        if path == mount.target or mount.target in path.parents:
            return mount.host.joinpath(*path.relative_to(mount.target).parts)
    raise AssertionError(f"{name}: nothing is mounted at {path}")


def flag(name: str, option: str) -> str | None:
    """The value of `--option=value` in a service's command, if given."""
    command = service(name).get("command") or []
    for arg in command if isinstance(command, list) else command.split():
        if str(arg).startswith(f"{option}="):
            return str(arg).split("=", 1)[1]
    return None


def environment(name: str) -> dict[str, str]:
    raw = service(name).get("environment") or {}
    if isinstance(raw, list):
        return {key: value for key, _, value in (item.partition("=") for item in raw)}
    return {key: "" if value is None else str(value) for key, value in raw.items()}


def published_ports(name: str) -> list[Port]:
    ports = []
    for spec in service(name).get("ports") or []:
        if isinstance(spec, dict):
            ip = spec.get("host_ip", "0.0.0.0")
            ports.append(Port(ip, int(spec["published"]), int(spec["target"])))
            continue
        parts = str(spec).split("/")[0].rsplit(":", 2)
        assert len(parts) > 1, f"{name}: port {spec!r} publishes on a random host port"
        ip = parts[0] if len(parts) == 3 else "0.0.0.0"
        ports.append(Port(ip, int(parts[-2]), int(parts[-1])))
    return ports


def listen_port(name: str) -> int:
    """The port a Prometheus, Alertmanager or Grafana container serves on."""
    if name == GRAFANA:
        return int(environment(GRAFANA).get("GF_SERVER_HTTP_PORT", DEFAULT_LISTEN_PORTS[GRAFANA]))
    address = flag(name, "--web.listen-address")
    return int(address.rsplit(":", 1)[1]) if address else DEFAULT_LISTEN_PORTS[name]


def build_context(name: str) -> tuple[Path, Path]:
    """(context directory, Dockerfile) of a built service."""
    build = service(name).get("build")
    assert build, f"{name} is not built from this repository"
    if isinstance(build, str):
        build = {"context": build}
    context = (COMPOSE_FILE.parent / build.get("context", ".")).resolve()
    return context, context / build.get("dockerfile", "Dockerfile")


def dockerfile_instructions(dockerfile: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    instructions = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def effective_environment(name: str) -> dict[str, str]:
    """What the process sees: the image's ENV overridden by the compose `environment`."""
    env: dict[str, str] = {}
    if service(name).get("build"):
        for keyword, rest in dockerfile_instructions(build_context(name)[1]):
            if keyword == "ENV":
                key, sep, value = rest.partition("=")
                if not sep:
                    key, _, value = rest.partition(" ")
                env[key.strip()] = value.strip().strip("\"'")
    return env | environment(name)


def worker_metrics_port(name: str) -> int:
    default = Settings.model_fields["metrics_port"].default
    return int(effective_environment(name).get(f"{ENV_PREFIX}METRICS_PORT", default))


def prometheus_config() -> dict[str, Any]:
    config_file = flag(PROMETHEUS, "--config.file")
    assert config_file, "prometheus: the command does not name --config.file"
    path = host_path(PROMETHEUS, config_file)
    assert path.is_file(), f"prometheus: {config_file} comes from {path}, which does not exist"
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict)
    return document


def rule_globs() -> list[Path]:
    """The config's rule_files patterns, as host paths through the Prometheus mounts."""
    patterns = prometheus_config().get("rule_files") or []
    assert patterns, "the compose Prometheus config loads no rule files"
    globs = []
    for pattern in patterns:
        container = PurePosixPath(pattern)
        assert container.is_absolute(), f"rule_files entry {pattern!r} should be absolute"
        globs.append(host_path(PROMETHEUS, container.parent) / container.name)
    return globs


def rule_files_loaded() -> set[Path]:
    return {match for pattern in rule_globs() for match in pattern.parent.glob(pattern.name)}


def split_host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def all_mounts() -> list[Mount]:
    return [mount for name in SERVICES for mount in bind_mounts(name)]


# --- the services -------------------------------------------------------------------------------


def test_the_stack_has_every_service_with_its_image():
    for name in (KAFKA, KAFKA_INIT, *WORKERS, MERGE, SIMULATOR, PROMETHEUS, ALERTMANAGER, GRAFANA):
        service(name)
    for name, repository in IMAGES.items():
        image = service(name).get("image", "")
        assert image.split(":")[0] == repository, f"{name} runs {image!r}, not {repository}"
    assert service(KAFKA)["image"].split(":")[1].startswith("4."), "Kafka 4.x (KRaft) expected"
    assert service(KAFKA_INIT)["image"] == service(KAFKA)["image"]


def test_only_the_simulator_waits_behind_the_sim_profile():
    assert service(SIMULATOR).get("profiles") == ["sim"]
    others = {name: svc["profiles"] for name, svc in SERVICES.items() if svc.get("profiles")}
    assert others == {SIMULATOR: ["sim"]}, "everything but the simulator starts by default"
    command = service(SIMULATOR)["command"]
    assert command[0] == "simulate"
    assert service(SIMULATOR).get("restart", "no") == "no", "a finished simulation stays finished"


@pytest.mark.parametrize("name", [*WORKERS, MERGE, SIMULATOR])
def test_pulse_services_are_built_from_the_dockerfile(name):
    context, dockerfile = build_context(name)
    assert context == REPO
    assert dockerfile == REPO / "deploy/docker/Dockerfile"
    assert dockerfile.is_file()
    entrypoints = [
        rest for keyword, rest in dockerfile_instructions(dockerfile) if keyword == "ENTRYPOINT"
    ]
    assert entrypoints, "the Dockerfile has no ENTRYPOINT"
    assert json.loads(entrypoints[-1]) == ["pulse"], "the image runs the `pulse` CLI"


@pytest.mark.parametrize("name", WORKERS)
def test_workers_run_the_worker_command(name):
    assert service(name)["command"] == ["worker"]
    assert service(name).get("restart") in {"unless-stopped", "always", "on-failure"}


def test_two_workers_publish_partials_that_one_merge_stage_merges():
    for name in WORKERS:
        assert service(name)["environment"]["PULSE_MERGE_STAGE"] == "true"
    merge = service(MERGE)
    assert merge["command"] == ["merge"]
    assert merge["environment"] == service(WORKERS[0])["environment"]  # same topics, same prefix
    assert merge.get("restart") in {"unless-stopped", "always", "on-failure"}
    assert merge.get("profiles") is None


def test_the_dockerfile_copies_files_that_exist():
    context, dockerfile = build_context(WORKERS[0])
    copies = [rest for keyword, rest in dockerfile_instructions(dockerfile) if keyword == "COPY"]
    assert copies
    for rest in copies:
        args = [arg for arg in rest.split() if not arg.startswith("--")]
        assert "--from" not in rest, "a multi-stage build: extend this test"
        for source in args[:-1]:
            assert (context / source).exists(), f"Dockerfile: COPY {source}: not in the repository"
    exposed = {
        int(port.split("/")[0])
        for keyword, rest in dockerfile_instructions(dockerfile)
        if keyword == "EXPOSE"
        for port in rest.split()
    }
    assert worker_metrics_port(WORKERS[0]) in exposed


# --- settings -----------------------------------------------------------------------------------


@pytest.fixture
def clean_environment(monkeypatch):
    """Whatever the shell running the tests exports must not leak into them."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    return monkeypatch


def test_every_pulse_variable_is_a_setting_with_a_valid_value(clean_environment):
    seen = 0
    for name in SERVICES:
        variables = {k: v for k, v in environment(name).items() if k.startswith(ENV_PREFIX)}
        for key in variables:
            field = key.removeprefix(ENV_PREFIX).lower()
            assert field in Settings.model_fields, f"{name}: {key} is not a field of Settings"
        with clean_environment.context() as env:
            for key, value in variables.items():
                env.setenv(key, value)
            load_settings()  # raises ConfigError naming the variable if a value is wrong
        seen += len(variables)
    assert seen, "no service sets PULSE_* variables: the workers would not find Kafka"


@pytest.mark.parametrize("name", WORKERS)
def test_workers_serve_metrics_beyond_their_own_loopback(name):
    default = Settings.model_fields["metrics_host"].default
    host = effective_environment(name).get(f"{ENV_PREFIX}METRICS_HOST", default)
    assert host in {"0.0.0.0", "::"}, f"{name}: /metrics on {host} cannot be scraped"


@pytest.mark.parametrize("name", WORKERS)
def test_worker_healthcheck_asks_the_metrics_port(name):
    test = " ".join(service(name)["healthcheck"]["test"])
    match = re.search(r"://(?:127\.0\.0\.1|localhost):(\d+)/healthz", test)
    assert match, f"{name}: the healthcheck does not ask /healthz"
    assert int(match.group(1)) == worker_metrics_port(name)


def test_workers_share_one_consumer_group_and_input_topics():
    default_group = Settings.model_fields["consumer_group"].default
    groups = {
        effective_environment(w).get(f"{ENV_PREFIX}CONSUMER_GROUP", default_group) for w in WORKERS
    }
    assert len(groups) == 1, f"workers in different groups each read every event: {groups}"
    topics = {effective_environment(w).get(f"{ENV_PREFIX}INPUT_TOPICS") for w in WORKERS}
    assert len(topics) == 1


# --- Kafka --------------------------------------------------------------------------------------


def advertised_addresses() -> set[str]:
    listeners = environment(KAFKA)["KAFKA_ADVERTISED_LISTENERS"]
    return {listener.split("://", 1)[1] for listener in listeners.split(",")}


@pytest.mark.parametrize("name", [*WORKERS, SIMULATOR])
def test_pulse_services_reach_kafka_on_its_advertised_listener(name):
    bootstrap = effective_environment(name).get(f"{ENV_PREFIX}KAFKA_BOOTSTRAP")
    assert bootstrap, f"{name}: PULSE_KAFKA_BOOTSTRAP unset (would need the embedded broker)"
    for address in bootstrap.split(","):
        assert split_host_port(address)[0] == KAFKA
        assert address in advertised_addresses()


def test_kafka_runs_in_kraft_mode_with_a_healthcheck():
    env = environment(KAFKA)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "KAFKA_ZOOKEEPER_CONNECT" not in env
    assert service(KAFKA).get("healthcheck")


def test_the_input_topic_is_created_before_the_workers_start():
    init = service(KAFKA_INIT)
    args = [*(init.get("entrypoint") or []), *(init.get("command") or [])]
    options = dict(zip(args, [*args[1:], None], strict=True))
    assert "--create" in args
    assert options["--bootstrap-server"] in advertised_addresses()
    topics = effective_environment(WORKERS[0]).get(f"{ENV_PREFIX}INPUT_TOPICS", "pulse.events")
    assert topics.split(",") == [options["--topic"]], "kafka-init creates another topic"
    assert int(options["--partitions"]) >= len(WORKERS), "a worker would own no partition"
    for name in [*WORKERS, SIMULATOR]:
        assert service(name)["depends_on"][KAFKA_INIT]["condition"] == (
            "service_completed_successfully"
        )


def test_depends_on_names_services_that_can_satisfy_it():
    for name, svc in SERVICES.items():
        depends_on = svc.get("depends_on") or {}
        if isinstance(depends_on, list):
            depends_on = {dep: {"condition": "service_started"} for dep in depends_on}
        for dep, options in depends_on.items():
            assert dep in SERVICES, f"{name} depends on a missing service {dep!r}"
            if options.get("condition") == "service_healthy":
                assert SERVICES[dep].get("healthcheck"), f"{dep} has no healthcheck for {name}"
            if not svc.get("profiles"):
                assert not SERVICES[dep].get("profiles"), f"{name} would wait for a profile"


# --- mounts -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mount", all_mounts(), ids=lambda m: f"{m.service}:{m.spec}")
def test_every_bind_mounted_path_exists_and_is_read_only(mount):
    assert mount.host.exists(), f"{mount.service} mounts {mount.host}, which does not exist"
    assert mount.host.is_relative_to(REPO), "mount files of this repository only"
    assert mount.read_only, f"{mount.service}: configs are mounted read-only"


def test_the_stack_mounts_the_configs_of_this_repository():
    assert host_path(PROMETHEUS, flag(PROMETHEUS, "--config.file") or "") == PROMETHEUS_CONFIG
    assert host_path(PROMETHEUS, "/etc/prometheus/rules") == RULES_DIR
    assert host_path(ALERTMANAGER, flag(ALERTMANAGER, "--config.file") or "") == (
        ALERTMANAGER_CONFIG
    )
    assert host_path(GRAFANA, "/etc/grafana/provisioning") == GRAFANA_PROVISIONING
    assert host_path(GRAFANA, "/var/lib/grafana/dashboards") == GRAFANA_DASHBOARDS


def test_prometheus_loads_every_rule_file_of_the_rules_directory():
    assert all(pattern.parent == RULES_DIR for pattern in rule_globs())
    loaded = rule_files_loaded()
    assert loaded, f"no rule file in {RULES_DIR} matches {[p.name for p in rule_globs()]}"
    for path in loaded:
        document = yaml.safe_load(path.read_text())
        assert isinstance(document, dict), f"{path.name} is not a rule file"
        assert document.get("groups"), f"{path.name} is not a rule file"
    rule_like = {
        path
        for path in RULES_DIR.glob("*.y*ml")
        if isinstance(doc := yaml.safe_load(path.read_text()), dict) and "groups" in doc
    }
    skipped = sorted(path.name for path in rule_like - loaded)
    assert not skipped, f"rule files Prometheus would not load (rename them): {skipped}"


def test_grafana_has_dashboards_to_show():
    boards = sorted(GRAFANA_DASHBOARDS.glob("*.json"))
    assert boards, f"no dashboard JSON in {GRAFANA_DASHBOARDS}"
    for board in boards:
        assert json.loads(board.read_text()).get("title"), f"{board.name} has no title"


def test_grafana_reads_dashboards_from_the_mounted_directory():
    provider_files = sorted((GRAFANA_PROVISIONING / "dashboards").glob("*.y*ml"))
    assert provider_files, "no dashboard provider in grafana/provisioning/dashboards/"
    providers = [
        provider
        for path in provider_files
        for provider in yaml.safe_load(path.read_text()).get("providers") or []
        if provider.get("type", "file") == "file"
    ]
    assert providers, "no file provider reads the dashboards"
    for provider in providers:
        directory = host_path(GRAFANA, provider["options"]["path"])
        assert directory == GRAFANA_DASHBOARDS, f"provider {provider.get('name')} reads {directory}"
    assert {provider.get("folder") for provider in providers} == {DASHBOARD_FOLDER}


def provisioned_datasources() -> list[dict[str, Any]]:
    path = host_path(GRAFANA, "/etc/grafana/provisioning/datasources/prometheus.yml")
    assert path == GRAFANA_DATASOURCE
    assert path.is_file(), f"{path.relative_to(REPO)} does not exist yet"
    return yaml.safe_load(path.read_text()).get("datasources") or []


def test_grafana_datasource_is_the_prometheus_service():
    prometheus = [ds for ds in provisioned_datasources() if ds.get("type") == "prometheus"]
    assert [ds.get("uid") for ds in prometheus] == [DATASOURCE_UID]
    url = re.match(r"^https?://([^/]+)/?$", prometheus[0]["url"])
    assert url, f"datasource url {prometheus[0]['url']!r}"
    assert split_host_port(url.group(1)) == (PROMETHEUS, listen_port(PROMETHEUS))


def datasource_uids(node: Any) -> set[str]:
    """Every fixed datasource uid a dashboard refers to (template variables left out)."""
    found: set[str] = set()
    if isinstance(node, dict):
        source = node.get("datasource")
        if isinstance(source, dict) and isinstance(source.get("uid"), str):
            found.add(source["uid"])
        for value in node.values():
            found |= datasource_uids(value)
    elif isinstance(node, list):
        for value in node:
            found |= datasource_uids(value)
    return {uid for uid in found if "$" not in uid} - BUILTIN_DATASOURCES


def test_dashboards_use_only_provisioned_datasources():
    provisioned = {ds.get("uid") for ds in provisioned_datasources()}
    boards = sorted(GRAFANA_DASHBOARDS.glob("*.json"))
    assert boards
    for board in boards:
        unknown = datasource_uids(json.loads(board.read_text())) - provisioned
        assert not unknown, f"{board.name} refers to datasources Grafana will not have: {unknown}"


# --- Prometheus and Alertmanager ----------------------------------------------------------------


def test_prometheus_scrapes_both_workers_and_the_merge_stage_as_job_pulse():
    config = prometheus_config()
    assert config["global"]["scrape_interval"] == "15s"
    assert config["global"]["evaluation_interval"] == "15s"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert "pulse" in jobs, 'the alert rules select up{job="pulse"}'
    targets = {t for sc in jobs["pulse"]["static_configs"] for t in sc["targets"]}
    assert targets == {f"{name}:{worker_metrics_port(name)}" for name in (*WORKERS, MERGE)}


def test_prometheus_alerts_go_to_the_alertmanager_service():
    alertmanagers = prometheus_config()["alerting"]["alertmanagers"]
    targets = {t for am in alertmanagers for sc in am["static_configs"] for t in sc["targets"]}
    assert targets == {f"{ALERTMANAGER}:{listen_port(ALERTMANAGER)}"}


def test_alert_links_open_boards_on_the_published_grafana():
    grafana_ports = {port.host_port for port in published_ports(GRAFANA)}
    board_uids = {
        json.loads(board.read_text()).get("uid") for board in GRAFANA_DASHBOARDS.glob("*.json")
    }
    links = [
        (rule.get("alert"), match)
        for path in sorted(rule_files_loaded())
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        for value in (rule.get("annotations") or {}).values()
        for match in re.finditer(r"https?://(?:localhost|127\.0\.0\.1):(\d+)/d/([\w-]+)", value)
    ]
    for alert, match in links:
        assert int(match.group(1)) in grafana_ports, f"{alert} links to {match.group(0)}"
        assert match.group(2) in board_uids, f"{alert} links to a board that does not exist"


@pytest.fixture
def promtool():
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not on PATH (Debian/Ubuntu: apt-get install prometheus)")
    return path


def test_promtool_accepts_the_compose_config_and_its_rules(promtool, tmp_path):
    # The rule_files globs name container paths; point them at the repository's files instead.
    config = prometheus_config()
    config["rule_files"] = [str(pattern) for pattern in rule_globs()]
    copy = tmp_path / "prometheus.yml"
    copy.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [promtool, "check", "config", str(copy)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_amtool_accepts_the_alertmanager_config():
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip(
            "amtool is not on PATH (Debian/Ubuntu: apt-get install prometheus-alertmanager)"
        )
    path = host_path(ALERTMANAGER, flag(ALERTMANAGER, "--config.file") or "")
    assert path.is_file(), f"{path.relative_to(REPO)} does not exist yet"
    result = subprocess.run(
        [amtool, "check-config", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- Grafana, images, ports ---------------------------------------------------------------------


def test_grafana_shows_boards_to_anonymous_viewers():
    env = environment(GRAFANA)
    assert env.get("GF_AUTH_ANONYMOUS_ENABLED", "").lower() == "true"
    assert env.get("GF_AUTH_ANONYMOUS_ORG_ROLE") == "Viewer", "anonymous users must not edit"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_images_are_pinned(name):
    image = service(name).get("image")
    assert image, f"{name} has no image name"
    if "@sha256:" in image:
        return
    last = image.rsplit("/", 1)[-1]
    assert ":" in last, f"{name}: {image!r} has no tag"
    assert last.split(":", 1)[1] != "latest", f"{name}: {image!r} is not pinned"


def test_the_uis_are_published_on_localhost_without_collisions():
    ports = {name: published_ports(name) for name in SERVICES}
    for name, host_port in PUBLISHED.items():
        assert Port("127.0.0.1", host_port, listen_port(name)) in ports[name], (
            f"{name} should be on http://localhost:{host_port}"
        )
    everything = [port for name in SERVICES for port in ports[name]]
    host_ports = [port.host_port for port in everything]
    assert len(host_ports) == len(set(host_ports)), f"a host port is published twice: {host_ports}"
    assert {port.host_ip for port in everything} == {"127.0.0.1"}, "publish on localhost only"
