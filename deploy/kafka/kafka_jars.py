"""The Apache Kafka broker's jars, fetched once by `mvn` into a cache outside the repository.

`deploy/kafka/pom.xml` pins the version (`<kafka.version>`) and lists the runtime artifacts.
`ensure_jars()` runs `mvn dependency:copy-dependencies` into
`${XDG_CACHE_HOME:-~/.cache}/kpi-pulse/kafka-<version>/libs` and then writes a marker naming the
pom's digest and every jar copied; while the marker matches, no `mvn` runs and nothing touches the
network. The same folder keeps the JVM's class-data archive for those jars (`class_archive`),
which saves a second or more of CPU per broker start.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from streams.errors import BrokerError

__all__ = [
    "MIN_JAVA",
    "POM",
    "Progress",
    "cache_dir",
    "class_archive",
    "ensure_jars",
    "java_executable",
    "kafka_version",
    "to_stderr",
]

POM = Path(__file__).resolve().parent / "pom.xml"
MIN_JAVA = 17  # Kafka 4.x brokers need Java 17
_MARKER = "libs.complete"

Progress = Callable[[str], None]
"""Receives one line for a person to read (fetching can take a while on the first run)."""


def to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def kafka_version(pom: Path = POM) -> str:
    """The `<kafka.version>` property of `pom`; raises `BrokerError`."""
    try:
        root = ET.parse(pom).getroot()
    except (OSError, ET.ParseError) as exc:
        raise BrokerError(f"cannot read the Kafka pom {pom}: {exc}") from exc
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == "kafka.version" and element.text:
            return element.text.strip()
    raise BrokerError(f"{pom} has no <kafka.version> property")


def cache_dir(version: str) -> Path:
    """`${XDG_CACHE_HOME:-~/.cache}/kpi-pulse/kafka-<version>`: `libs/`, the marker, archives."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kpi-pulse" / f"kafka-{version}"


def _pom_digest(pom: Path) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def _complete_marker(version_dir: Path, pom: Path) -> str | None:
    """The marker's text when a copy finished for this very pom and every jar it lists is still
    there, else None."""
    try:
        text = (version_dir / _MARKER).read_text()
    except OSError:
        return None
    first, *jars = text.splitlines() or [""]
    libs = version_dir / "libs"
    if first != f"pom-sha256 {_pom_digest(pom)}" or not jars:
        return None
    return text if all((libs / jar).is_file() for jar in jars) else None


def ensure_jars(pom: Path = POM, progress: Progress = to_stderr) -> Path:
    """The folder of the broker's runtime jars, copied by `mvn` when the cache is incomplete.

    A complete cache is used as it is. Concurrent callers wait on a lock instead of copying
    twice. Raises `BrokerError` when `mvn` is missing or fails.
    """
    version = kafka_version(pom)
    version_dir = cache_dir(version)
    libs = version_dir / "libs"
    if _complete_marker(version_dir, pom):
        return libs
    version_dir.mkdir(parents=True, exist_ok=True)
    with (version_dir / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _complete_marker(version_dir, pom):  # else another process fetched meanwhile
            _fetch(pom, version, version_dir, progress)
    return libs


def _fetch(pom: Path, version: str, version_dir: Path, progress: Progress) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            f"mvn not found: it fetches the Apache Kafka {version} jars once into {version_dir}. "
            "Install it (apt-get install -y --no-install-recommends maven) and retry."
        )
    progress(f"fetching Apache Kafka {version} jars with mvn (first run only)…")
    started = time.monotonic()
    partial = version_dir / "libs.partial"
    shutil.rmtree(partial, ignore_errors=True)
    (version_dir / _MARKER).unlink(missing_ok=True)
    command = [
        mvn,
        "-B",
        "-q",
        "-Dstyle.color=never",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={partial}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    jars = sorted(p.name for p in partial.glob("*.jar")) if partial.is_dir() else []
    if result.returncode != 0 or not jars:
        output = (result.stdout + result.stderr).strip()[-3000:]
        raise BrokerError(
            f"mvn could not copy the Apache Kafka {version} jars "
            f"(exit {result.returncode}): {' '.join(command)}\n{output}"
        )
    libs = version_dir / "libs"
    shutil.rmtree(libs, ignore_errors=True)
    partial.rename(libs)
    marker = version_dir / f"{_MARKER}.tmp"
    marker.write_text("\n".join([f"pom-sha256 {_pom_digest(pom)}", *jars]) + "\n")
    marker.replace(version_dir / _MARKER)  # last: only a complete copy gets a marker
    size_mb = sum((libs / jar).stat().st_size for jar in jars) / 1e6
    progress(
        f"fetched {len(jars)} jars ({size_mb:.0f} MB) into {libs} "
        f"in {time.monotonic() - started:.1f} s"
    )


@functools.cache
def _java_version(java: str) -> str:
    # `java -version` writes e.g. 'openjdk version "17.0.15" 2025-04-15' (or "1.8.0_392") to
    # stderr, plus the runtime and VM lines.
    result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    return result.stderr.strip()


@functools.cache
def java_executable() -> str:
    """`$JAVA_HOME/bin/java` or `java` on PATH, checked to be Java 17+; raises `BrokerError`."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else None
    if java is None or not Path(java).is_file():
        java = shutil.which("java")
    if java is None:
        raise BrokerError(
            f"java not found: Apache Kafka 4.x needs Java {MIN_JAVA} or newer "
            "(apt-get install -y --no-install-recommends openjdk-17-jre-headless)"
        )
    text = _java_version(java)
    found = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    major = int(found[1]) if found else 0
    if major == 1 and found and found[2]:
        major = int(found[2])
    if major < MIN_JAVA:
        first_line = (text.splitlines() or ["no version"])[0]
        raise BrokerError(f"{java} is {first_line!r}: Apache Kafka 4.x needs Java {MIN_JAVA}+")
    return java


def class_archive(libs: Path, java: str) -> Path:
    """Where the class-data archive (AppCDS) for these jars and this JVM lives, made or not.

    The name carries a digest of the JVM's version and of the jar list: a new JDK or a new fetch
    gets a new archive instead of one the JVM would reject.
    """
    marker = libs.parent / _MARKER
    jars = marker.read_bytes() if marker.is_file() else b""
    digest = hashlib.sha256(_java_version(java).encode() + b"\0" + jars).hexdigest()[:16]
    return libs.parent / f"classes-{digest}.jsa"
