#!/usr/bin/env python3
"""Apache Kafka 4.x for kpi-pulse's tests: one node or a 3-node KRaft cluster on 127.0.0.1.

The broker's jars are copied once by mvn (from deploy/kafka/pom.xml) into
${XDG_CACHE_HOME:-~/.cache}/kpi-pulse/kafka-<version>/libs; later runs use that cache and no
network. Each node is a combined broker+controller JVM in a temp directory, on free loopback ports,
and is stopped (SIGTERM, then SIGKILL) when this program ends.

  fetch                          only fill the jar cache
  start [--nodes 1|3]            run in the foreground until Ctrl-C or SIGTERM; prints
                                 PULSE_KAFKA_BOOTSTRAP=127.0.0.1:p1,... once every broker is up
  run [--nodes 1|3] -- CMD ...   run CMD with PULSE_KAFKA_BOOTSTRAP set, stop Kafka, exit with
                                 CMD's status, e.g. `run --nodes 3 -- make test-integration`

Needs java (17+) and, until the cache is filled, mvn. Use the project's Python:
.venv/bin/python deploy/kafka/kafka_cluster.py start --nodes 3
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TextIO

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a script from anywhere: use this checkout's `streams`
    sys.path.insert(0, str(REPO))

from apache_kafka import KafkaCluster  # noqa: E402
from kafka_jars import ensure_jars  # noqa: E402

from streams.errors import BrokerError  # noqa: E402


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM stops us the way Ctrl-C does: nodes first, cleanly


@contextlib.contextmanager
def _running(nodes: int, timeout: float, keep: bool) -> Iterator[KafkaCluster]:
    cluster = KafkaCluster(nodes, keep_workdir=keep)
    cluster.start(timeout)
    try:
        yield cluster
    finally:
        cluster.stop()


def _describe(cluster: KafkaCluster, seconds: float, out: TextIO) -> None:
    nodes = "1 node" if cluster.size == 1 else f"{cluster.size} nodes"
    print(
        f"Apache Kafka {cluster.version}: {nodes} ready in {seconds:.1f} s "
        f"(replication {cluster.replication}, min.insync.replicas "
        f"{cluster.min_insync_replicas}; data in {cluster.workdir})",
        file=out,
    )
    for node_id, pid in cluster.pids.items():
        print(
            f"  node {node_id}: pid {pid}, {cluster.node_bootstrap(node_id)}, "
            f"log {cluster.log_path(node_id)}",
            file=out,
        )


def start(nodes: int, print_env: bool, timeout: float, keep: bool) -> int:
    # With --print-env, stdout carries exactly one line, for scripts; the rest goes to stderr.
    human = sys.stderr if print_env else sys.stdout
    began = time.monotonic()
    with _running(nodes, timeout, keep) as cluster:
        if not print_env:
            _describe(cluster, time.monotonic() - began, human)
        print(f"PULSE_KAFKA_BOOTSTRAP={cluster.bootstrap}", flush=True)
        print("Ctrl-C stops it.", file=human, flush=True)
        reported: set[int] = set()
        try:
            while True:
                time.sleep(1)
                for node_id, pid in cluster.pids.items():
                    if pid is None and node_id not in reported:
                        reported.add(node_id)
                        print(
                            f"node {node_id} is no longer running; its log: "
                            f"{cluster.log_path(node_id)}",
                            file=sys.stderr,
                            flush=True,
                        )
        except KeyboardInterrupt:
            print("stopping Apache Kafka…", file=human, flush=True)
    return 0


def run(nodes: int, command: list[str], timeout: float, keep: bool) -> int:
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        print("run: give a command after --", file=sys.stderr)
        return 2
    began = time.monotonic()
    with _running(nodes, timeout, keep) as cluster:
        _describe(cluster, time.monotonic() - began, sys.stderr)
        print(f"PULSE_KAFKA_BOOTSTRAP={cluster.bootstrap}", file=sys.stderr, flush=True)
        env = {**os.environ, "PULSE_KAFKA_BOOTSTRAP": cluster.bootstrap}
        try:
            return subprocess.call(command, env=env)
        except KeyboardInterrupt:
            return 130


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kafka_cluster.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("fetch", help="copy the broker's jars into the cache with mvn (once)")
    for name, help_text in (
        ("start", "run Apache Kafka in the foreground until Ctrl-C"),
        ("run", "run a command against a fresh Apache Kafka, then stop it"),
    ):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument(
            "--nodes",
            type=int,
            choices=(1, 3),
            default=1,
            help="1 node (replication 1) or 3 nodes (replication 3, min.insync.replicas 2)",
        )
        sub.add_argument(
            "--timeout", type=float, default=90.0, help="seconds to wait for readiness (90)"
        )
        sub.add_argument(
            "--keep", action="store_true", help="keep the nodes' data and logs after stopping"
        )
        if name == "start":
            sub.add_argument(
                "--print-env",
                action="store_true",
                help="print only PULSE_KAFKA_BOOTSTRAP=... on stdout (the rest on stderr)",
            )
        else:
            sub.add_argument("cmd", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    args = parser.parse_args(argv)

    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if args.command == "fetch":
            print(ensure_jars())
            return 0
        if args.command == "start":
            return start(args.nodes, args.print_env, args.timeout, args.keep)
        return run(args.nodes, args.cmd, args.timeout, args.keep)
    except BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
