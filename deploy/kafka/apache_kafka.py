"""Apache Kafka 4.x for tests: one node or a KRaft cluster of combined broker+controller nodes.

Each node runs as `java -cp '<libs>/*' kafka.Kafka server.properties` (jars from
`kafka_jars`, fetched once by mvn) in its own folder of a temp directory, on loopback ports
the OS picked, logging to `node-<id>/server.log`.

    with KafkaCluster(nodes=3) as cluster:
        cluster.bootstrap                  # "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3"
        cluster.kill(2, signal.SIGKILL)
        cluster.restart(2)                 # same data dir and ports; waits until it is back

Only tests and `deploy/kafka/kafka_cluster.py` import this module; the worker never does.
Nodes get SIGKILL when the thread that started them ends (PR_SET_PDEATHSIG, so that none outlives
a killed test run): start and restart them from a thread that outlives them, such as the main
thread, not an executor's worker.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from kafka_jars import POM, Progress, class_archive, ensure_jars, java_executable
from kafka_jars import kafka_version as pom_kafka_version
from kafka_jars import to_stderr as progress_to_stderr

from streams.errors import BrokerError
from streams.kafka.embedded import die_with_parent

__all__ = ["JVM_OPTIONS", "MAIN_CLASS", "STORAGE_TOOL", "KafkaCluster", "kafka_uuid"]

log = logging.getLogger(__name__)

MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"  # what bin/kafka-storage.sh runs in 4.x
HOST = "127.0.0.1"

# Three nodes must fit 2 cores: serial GC (no GC threads competing for the cores), a heap that
# starts small and stops at 512 MB, and C1 only — C2 compiling in three JVMs at once made a
# 3-node start take ~12 s instead of ~9 s, and a test broker never runs long enough to repay it.
JVM_OPTIONS: tuple[str, ...] = (
    "-Xms64m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:+ExitOnOutOfMemoryError",
    "-XX:-UsePerfData",  # no /tmp/hsperfdata_* files
    "-Djava.awt.headless=true",
)
_TOOL_JVM_OPTIONS = ("-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData")
_CLEAN_EXIT = (0, 128 + signal.SIGTERM)  # Kafka exits 143 after a SIGTERM shutdown


T = TypeVar("T")

_LOG4J2 = """\
status = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log_file}
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
"""


def kafka_uuid() -> str:
    """A random Kafka `Uuid` as its tools print it (URL-safe base64, no padding).

    Like Kafka's `Uuid.randomUuid()`, never one that starts with "-" (a command line would read
    it as an option).
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


@dataclass
class _Node:
    node_id: int
    port: int
    controller_port: int
    directory: Path
    directory_id: str  # of its metadata log dir: `--initial-controllers` names it
    secure_port: int | None = None  # the SECURE listener's, when the cluster has one
    process: subprocess.Popen[bytes] | None = None
    wanted: bool = False  # started and not stopped on purpose: readiness waits for it

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def properties(self) -> Path:
        return self.directory / "server.properties"

    @property
    def log4j(self) -> Path:
        return self.directory / "log4j2.properties"

    @property
    def server_log(self) -> Path:
        return self.directory / "server.log"

    @property
    def stdout_log(self) -> Path:
        return self.directory / "stdout.log"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class KafkaCluster:
    """`nodes` combined broker+controller KRaft nodes on loopback, in a temp directory.

    Replication defaults to min(nodes, 3) with `min.insync.replicas` one less (at least 1): one
    node takes internal topics with replication 1; three nodes keep accepting `acks=all` with one
    node down. `config` overrides or adds broker settings for every node. `start`, `restart` and
    `wait_ready` raise `BrokerError` carrying the nodes' log tails.

    `secure_protocol` (e.g. "SASL_SSL") adds a listener named SECURE on its own port per node
    (`secure_bootstrap`), configured through `config` with `listener.name.secure.*` keys;
    brokers, the controller and readiness keep the PLAINTEXT one. `format_args` are added to
    the storage format command (e.g. `--add-scram` users); see `secure_kafka`.
    """

    def __init__(
        self,
        nodes: int = 1,
        *,
        min_insync_replicas: int | None = None,
        config: Mapping[str, str] | None = None,
        jvm_options: Sequence[str] = JVM_OPTIONS,
        class_data_sharing: bool = True,
        pom: Path = POM,
        keep_workdir: bool = False,
        progress: Progress = progress_to_stderr,
        secure_protocol: str | None = None,
        format_args: Sequence[str] = (),
    ) -> None:
        if nodes < 1:
            raise ValueError(f"a cluster needs at least one node, not {nodes}")
        self.size = nodes
        self.version = pom_kafka_version(pom)
        self.replication = min(nodes, 3)
        self.min_insync_replicas = min_insync_replicas or max(1, self.replication - 1)
        self.config = dict(config or {})
        self.jvm_options = tuple(jvm_options)
        self.class_data_sharing = class_data_sharing
        self.pom = pom
        self.keep_workdir = keep_workdir
        self.progress = progress
        self.secure_protocol = secure_protocol
        self.format_args = tuple(format_args)
        self.cluster_id = kafka_uuid()
        self.workdir: Path | None = None
        self._nodes: dict[int, _Node] = {}
        self._java = ""
        self._classpath = ""
        self._archive: Path | None = None
        self._archive_writer: tuple[int, Path] | None = None  # node writing it at exit, temp
        self._archive_tried = False

    # -- what callers read

    @property
    def bootstrap(self) -> str:
        """Every node's broker address, "127.0.0.1:p1,127.0.0.1:p2,…" (stopped ones included)."""
        return ",".join(node.address for node in self._nodes.values())

    @property
    def secure_bootstrap(self) -> str:
        """Every node's SECURE listener address (needs `secure_protocol`)."""
        if self.secure_protocol is None:
            raise BrokerError("this KafkaCluster has no secure listener")
        return ",".join(f"{HOST}:{node.secure_port}" for node in self._nodes.values())

    @property
    def node_ids(self) -> list[int]:
        return list(self._nodes)

    @property
    def pids(self) -> dict[int, int | None]:
        """Node id → pid of its JVM, or None while it is not running."""
        return {
            node_id: node.process.pid if node.process and node.running() else None
            for node_id, node in self._nodes.items()
        }

    def node_bootstrap(self, node_id: int) -> str:
        return self._node(node_id).address

    def log_path(self, node_id: int) -> Path:
        return self._node(node_id).server_log

    def log_tail(self, node_id: int, lines: int = 30) -> str:
        node = self._node(node_id)
        parts = [_tail(node.server_log, lines), _tail(node.stdout_log, 10)]
        return "\n".join(part for part in parts if part)

    # -- lifecycle

    def start(self, timeout: float = 90.0) -> None:
        """Fetch the jars if needed, format every node's storage, start the nodes and wait until
        every broker is registered; on failure everything started is stopped again."""
        if self._nodes:
            raise BrokerError("this KafkaCluster was already started")
        self._java = java_executable()
        libs = ensure_jars(self.pom, self.progress)
        self._classpath = str(libs / "*")
        if self.class_data_sharing:
            self._archive = class_archive(libs, self._java)
        self.workdir = Path(tempfile.mkdtemp(prefix="pulse-kafka-"))
        per_node = 2 if self.secure_protocol is None else 3
        ports = _free_ports(per_node * self.size)
        for index in range(self.size):
            node_id = index + 1
            directory = self.workdir / f"node-{node_id}"
            directory.mkdir()
            mine = ports[per_node * index : per_node * (index + 1)]
            node = _Node(node_id, mine[0], mine[1], directory, kafka_uuid())
            node.secure_port = mine[2] if len(mine) > 2 else None
            self._nodes[node_id] = node
        try:
            for node in self._nodes.values():
                self._write_config(node)
            self._format_all()
            for node in self._nodes.values():
                self._launch(node)
            self.wait_ready(timeout)
        except BaseException:
            self.stop(grace=0)
            raise

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until every node not stopped on purpose serves metadata listing all of them."""
        _run_sync(lambda: self.wait_ready_async(timeout))

    async def wait_ready_async(self, within: float = 60.0) -> None:
        """`wait_ready` for coroutines: the event loop keeps running while the nodes start."""
        deadline = time.monotonic() + within
        running = [node for node in self._nodes.values() if node.wanted]
        expected = {node.node_id for node in running}
        while True:
            for node in running:
                if not node.running():
                    code = node.process.returncode if node.process else None
                    raise BrokerError(
                        f"Apache Kafka node {node.node_id} exited with {code}:\n"
                        f"{self.log_tail(node.node_id)}"
                    )
            problem = await _readiness_problem(running, expected)
            if problem is None:
                return
            if time.monotonic() > deadline:
                tails = "\n".join(
                    f"--- node {node.node_id} ({node.server_log}):\n{self.log_tail(node.node_id)}"
                    for node in running
                )
                raise BrokerError(
                    f"Apache Kafka not ready within {within:.0f} s: {problem}\n{tails}"
                )
            await asyncio.sleep(0.2)

    def start_node(self, node_id: int) -> None:
        """Start a stopped node again, with its data dir and ports; does not wait for it (see
        `wait_ready`). Raises `BrokerError` if it runs, or still runs 30 s after being asked to
        stop."""
        node = self._node(node_id)
        if node.wanted and node.running():
            raise BrokerError(f"Kafka node {node_id} is running: stop or kill it first")
        if node.process is not None:
            try:
                node.process.wait(30)
            except subprocess.TimeoutExpired as exc:
                raise BrokerError(f"Kafka node {node_id} is still running: stop it first") from exc
            self._exited(node)
        self._launch(node)

    def restart(self, node_id: int, timeout: float = 60.0) -> None:
        """Stop the node if it runs (SIGTERM), start it again and wait until it is back."""
        self.stop_node(node_id)
        self.start_node(node_id)
        self.wait_ready(timeout)

    def kill(self, node_id: int, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the node's JVM (ours, by pid); after SIGKILL, wait until it is gone."""
        node = self._node(node_id)
        if node.process is None or not node.running():
            return
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            node.wanted = False
        node.process.send_signal(sig)
        if sig == signal.SIGKILL:
            node.process.wait(30)
            self._exited(node)

    def stop_node(self, node_id: int, grace: float = 30.0) -> int | None:
        """SIGTERM (a controlled shutdown), SIGKILL after `grace` s; the JVM's exit code."""
        node = self._node(node_id)
        if node.process is None:
            return None
        node.wanted = False
        _terminate([node.process], grace)
        self._exited(node)
        log.info("Kafka node %d stopped (exit %s)", node_id, node.process.returncode)
        return node.process.returncode

    def stop(self, grace: float = 10.0) -> None:
        """Stop every node (SIGTERM, SIGKILL after `grace` s) and remove the temp directory
        unless `keep_workdir`. Safe to call twice.

        The nodes get SIGTERM together: a broker's controlled shutdown needs a controller quorum,
        so one that starts it after the others are gone waits minutes for an approval that
        cannot come; `grace` bounds that. A node writing the class-data archive goes first, on
        its own, so that it exits cleanly and the archive is kept.
        """
        if self._archive_writer is not None:
            writer = self._nodes[self._archive_writer[0]]
            if writer.process is not None:
                _terminate([writer.process], grace)
                self._exited(writer)
        for node in self._nodes.values():
            node.wanted = False
        processes = [node.process for node in self._nodes.values() if node.process is not None]
        _terminate(processes, grace)
        for node in self._nodes.values():
            self._exited(node)
        if self.workdir is not None and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> KafkaCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals

    def _node(self, node_id: int) -> _Node:
        try:
            return self._nodes[node_id]
        except KeyError:
            raise BrokerError(f"no Kafka node {node_id}; nodes are {self.node_ids}") from None

    def _write_config(self, node: _Node) -> None:
        quorum = ",".join(f"{HOST}:{other.controller_port}" for other in self._nodes.values())
        listeners = f"PLAINTEXT://{node.address},CONTROLLER://{HOST}:{node.controller_port}"
        protocols = "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
        if self.secure_protocol is not None:
            listeners += f",SECURE://{HOST}:{node.secure_port}"
            protocols += f",SECURE:{self.secure_protocol}"
        rf, min_isr = str(self.replication), str(self.min_insync_replicas)
        settings = {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            "listeners": listeners,
            "advertised.listeners": listeners,
            "listener.security.protocol.map": protocols,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.quorum.bootstrap.servers": quorum,
            "log.dirs": str(node.directory / "data"),
            "num.partitions": "1",
            "default.replication.factor": rf,
            "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": rf,
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": min_isr,
            "share.coordinator.state.topic.replication.factor": rf,
            "share.coordinator.state.topic.min.isr": min_isr,
            "auto.create.topics.enable": "true",
            # Tests join a group right after creating it: no 3 s wait for more members.
            "group.initial.rebalance.delay.ms": "0",
            # A killed node is fenced, and so leaves every ISR, after 6 s instead of 9 s.
            "broker.heartbeat.interval.ms": "1000",
            "broker.session.timeout.ms": "6000",
            **self.config,
        }
        node.properties.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
        node.log4j.write_text(_LOG4J2.format(log_file=node.server_log))

    def _format_all(self) -> None:
        """Format every node's storage with one cluster id and one quorum, in parallel (each is
        a JVM start)."""
        if self.size == 1:
            quorum_flags = ["--standalone"]
        else:
            voters = ",".join(
                f"{node.node_id}@{HOST}:{node.controller_port}:{node.directory_id}"
                for node in self._nodes.values()
            )
            quorum_flags = ["--initial-controllers", voters]
        formatting = []
        for node in self._nodes.values():
            command = [
                self._java,
                *_TOOL_JVM_OPTIONS,
                f"-Dlog4j2.configurationFile={node.log4j}",
                "-cp",
                self._classpath,
                STORAGE_TOOL,
                "format",
                "--config",
                str(node.properties),
                "--cluster-id",
                self.cluster_id,
                *quorum_flags,
                *self.format_args,
            ]
            process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,  # noqa: PLW1509 - no threads run here
            )
            formatting.append((node, process))
        for node, process in formatting:
            output, _ = process.communicate(timeout=120)
            if process.returncode != 0:
                raise BrokerError(
                    f"formatting the storage of Kafka node {node.node_id} failed "
                    f"(exit {process.returncode}):\n{output.decode(errors='replace')[-3000:]}"
                )

    def _class_data_flags(self, node: _Node) -> list[str]:
        """Use the class-data archive when there is one; else have the first node write it when
        it exits, for the next start."""
        if self._archive is None:
            return []
        if self._archive.is_file():
            return [f"-XX:SharedArchiveFile={self._archive}", "-Xlog:cds=off"]
        if self._archive_tried:  # one attempt per cluster; a killed writer leaves it to the next
            return []
        self._archive_tried = True
        temp = self._archive.with_name(f"{self._archive.name}.{os.getpid()}.tmp")
        self._archive_writer = (node.node_id, temp)
        return [f"-XX:ArchiveClassesAtExit={temp}", "-Xlog:cds=off"]

    def _exited(self, node: _Node) -> None:
        """Keep the archive the node wrote at a clean exit (never a half-written one)."""
        if self._archive is None or self._archive_writer is None or node.process is None:
            return
        writer, temp = self._archive_writer
        if writer != node.node_id or node.process.poll() is None:
            return
        self._archive_writer = None
        if node.process.returncode in _CLEAN_EXIT and temp.is_file() and temp.stat().st_size:
            temp.replace(self._archive)
        else:
            temp.unlink(missing_ok=True)

    def _launch(self, node: _Node) -> None:
        command = [
            self._java,
            *self.jvm_options,
            *self._class_data_flags(node),
            f"-Dlog4j2.configurationFile={node.log4j}",
            f"-Dkafka.logs.dir={node.directory}",
            "-cp",
            self._classpath,
            MAIN_CLASS,
            str(node.properties),
        ]
        with node.stdout_log.open("ab") as output:
            node.process = subprocess.Popen(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=node.directory,
                # Own session: a terminal's Ctrl-C reaches only us, and we stop the nodes after
                # our clients instead of having them die under the clients' feet.
                start_new_session=True,
                preexec_fn=die_with_parent,  # noqa: PLW1509 - no threads run here
            )
        node.wanted = True
        log.info(
            "Kafka node %d started (pid %d) on %s", node.node_id, node.process.pid, node.address
        )


def _free_ports(count: int) -> list[int]:
    """`count` distinct ports the OS considers free on loopback right now."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind((HOST, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def _tail(path: Path, lines: int) -> str:
    try:
        with path.open("rb") as file:
            file.seek(0, os.SEEK_END)
            file.seek(max(0, file.tell() - 300 * lines))
            text = file.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _terminate(processes: Sequence[subprocess.Popen[bytes]], grace: float) -> None:
    """SIGTERM every live process at once, SIGKILL those still alive after `grace` seconds."""
    alive = [process for process in processes if process.poll() is None]
    for process in alive:
        process.terminate()
    deadline = time.monotonic() + grace
    for process in alive:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(30)


async def _readiness_problem(running: Sequence[_Node], expected: set[int]) -> str | None:
    """None when every running node answers metadata that lists every expected broker, else
    what is still missing."""
    for node in running:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(HOST, node.port), 1.0)
        except (OSError, TimeoutError):
            return f"node {node.node_id} does not accept connections on {node.address} yet"
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        try:
            brokers = await _broker_ids(node.address)
        except (KafkaError, OSError, TimeoutError) as exc:
            return f"node {node.node_id} does not answer metadata yet ({exc!r})"
        if not expected <= brokers:
            return (
                f"node {node.node_id} lists brokers {sorted(brokers)}, "
                f"waiting for {sorted(expected)}"
            )
    return None


async def _broker_ids(address: str) -> set[int]:
    """Ids of the brokers in the metadata `address` serves (KRaft leaves fenced ones out)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=address, request_timeout_ms=5000)
    try:
        await asyncio.wait_for(admin.start(), 5)
        cluster = await asyncio.wait_for(admin.describe_cluster(), 5)
    finally:
        await admin.close()
    return {int(broker["node_id"]) for broker in cluster["brokers"]}


def _run_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, also when this thread runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()
