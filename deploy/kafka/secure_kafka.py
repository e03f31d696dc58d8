"""Apache Kafka with a SASL_SSL listener, for the tests of `PULSE_KAFKA_SECURITY_PROTOCOL`.

`Certificates.make(folder)` makes, with the JDK's `keytool` (no other tool needed), a test CA,
a broker keystore whose certificate that CA signed for 127.0.0.1 and localhost, and a second CA
that signed nothing (for the "untrusted certificate" case); `ca.pem` and `other-ca.pem` are what
a client's `PULSE_KAFKA_SSL_CAFILE` points at.

    certs = Certificates.make(tmp_path)
    with secure_cluster(certs) as cluster:
        cluster.bootstrap            # PLAINTEXT, for the test's own setup and checks
        cluster.secure_bootstrap     # SASL_SSL: user USER, password PASSWORD, SCRAM or PLAIN

Users: SCRAM-SHA-256 and SCRAM-SHA-512 credentials stored in the cluster metadata at format
time (`--add-scram`), and the same user for PLAIN in the listener's JAAS config. Only tests
import this module.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from apache_kafka import KafkaCluster

from streams.errors import BrokerError

USER = "pulse-svc"
PASSWORD = "s3cret-Pa55word-for-tests"  # a test fixture's, on a loopback broker
_STORE_PASSWORD = "changeit-test-store"
_DAYS = "3"


@dataclass(frozen=True)
class Certificates:
    keystore: Path
    """PKCS12: the broker's key and its certificate chain (signed by `ca`)."""
    ca: Path
    """PEM: the CA that signed the broker's certificate."""
    other_ca: Path
    """PEM: a CA that signed nothing here."""

    @classmethod
    def make(cls, folder: Path) -> Certificates:
        folder.mkdir(parents=True, exist_ok=True)
        ca_store, keystore = folder / "ca.p12", folder / "broker.p12"
        other_store = folder / "other-ca.p12"
        ca, other_ca = folder / "ca.pem", folder / "other-ca.pem"
        csr, signed = folder / "broker.csr", folder / "broker.pem"
        for store, dname in ((ca_store, "CN=pulse test CA"), (other_store, "CN=pulse other CA")):
            _keytool("-genkeypair", "-alias", "ca", "-dname", dname, "-ext", "bc:c", store=store)
        _keytool("-exportcert", "-rfc", "-alias", "ca", "-file", str(ca), store=ca_store)
        _keytool("-exportcert", "-rfc", "-alias", "ca", "-file", str(other_ca), store=other_store)
        _keytool("-genkeypair", "-alias", "broker", "-dname", "CN=localhost", store=keystore)
        _keytool("-certreq", "-alias", "broker", "-file", str(csr), store=keystore)
        _keytool(
            "-gencert",
            "-alias",
            "ca",
            "-rfc",
            "-infile",
            str(csr),
            "-outfile",
            str(signed),
            "-ext",
            "SAN=ip:127.0.0.1,dns:localhost",
            store=ca_store,
        )
        _keytool("-importcert", "-noprompt", "-alias", "ca", "-file", str(ca), store=keystore)
        _keytool("-importcert", "-alias", "broker", "-file", str(signed), store=keystore)
        return cls(keystore, ca, other_ca)


def _keytool(*args: str, store: Path) -> None:
    keytool = shutil.which("keytool")
    if keytool is None:
        raise BrokerError("keytool (from a JDK 17+) is needed for the TLS tests")
    command = [keytool, *args, "-keystore", str(store), "-storetype", "PKCS12"]
    command += ["-storepass", _STORE_PASSWORD]
    if "-genkeypair" in args:
        command += ["-keyalg", "RSA", "-keysize", "2048"]
    if "-genkeypair" in args or "-gencert" in args:
        command += ["-validity", _DAYS]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        raise BrokerError(f"keytool {args[0]} failed: {done.stdout}{done.stderr}")


def secure_cluster(certs: Certificates, **options: object) -> KafkaCluster:
    """A one-node cluster (not started: use it as a context manager) with a SASL_SSL listener
    that knows `USER`/`PASSWORD` for PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512."""
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    plain = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'user_{USER}="{PASSWORD}";'
    )
    prefix = "listener.name.secure."
    config = {
        f"{prefix}ssl.keystore.location": str(certs.keystore),
        f"{prefix}ssl.keystore.password": _STORE_PASSWORD,
        f"{prefix}ssl.keystore.type": "PKCS12",
        f"{prefix}ssl.key.password": _STORE_PASSWORD,
        f"{prefix}sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        f"{prefix}plain.sasl.jaas.config": plain,
        f"{prefix}scram-sha-256.sasl.jaas.config": scram,
        f"{prefix}scram-sha-512.sasl.jaas.config": scram,
    }
    users = [
        f"{mechanism}=[name={USER},password={PASSWORD}]"
        for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512")
    ]
    return KafkaCluster(
        nodes=1,
        config=config,
        secure_protocol="SASL_SSL",
        format_args=[arg for user in users for arg in ("--add-scram", user)],
        **options,  # type: ignore[arg-type]
    )
