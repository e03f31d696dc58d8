"""How every Kafka client of kpi-pulse connects: the bootstrap address plus TLS and SASL.

`connection(settings)` turns the `PULSE_KAFKA_*` settings into a `KafkaConnection` once, at
start; every client factory in `streams.kafka.clients` takes it (or a bare "host:port" string,
which means PLAINTEXT, as the tools and tests that run their own broker use). `preflight` then
opens one connection the way every client will, so that a wrong password, an untrusted
certificate or a listener of another protocol stops the worker at once with the setting to fix
named, instead of the clients' generic "Unable to bootstrap" after trying every host.

Secrets stay out of text: `KafkaConnection` prints as its bootstrap address, its options are
left out of its repr, and no message here quotes a password.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from aiokafka.conn import create_conn
from aiokafka.errors import (
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.helpers import create_ssl_context

from streams.errors import BrokerError, ConfigError
from streams.settings import ENV_PREFIX, Settings

PREFLIGHT_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class KafkaConnection:
    """A bootstrap address and the security options every aiokafka client gets with it."""

    bootstrap: str
    options: Mapping[str, object] = field(default_factory=dict, repr=False)
    """aiokafka keyword arguments: security_protocol, ssl_context, sasl_* (never printed)."""

    def __str__(self) -> str:
        return self.bootstrap

    @property
    def protocol(self) -> str:
        return str(self.options.get("security_protocol", "PLAINTEXT"))


KafkaTarget: TypeAlias = "str | KafkaConnection"
"""What the client factories accept: a connection, or a bare address meaning PLAINTEXT."""


def as_connection(target: KafkaTarget) -> KafkaConnection:
    return target if isinstance(target, KafkaConnection) else KafkaConnection(target)


def client_options(target: KafkaTarget) -> dict[str, object]:
    """Keyword arguments for any aiokafka client (consumer, producer, admin) of `target`."""
    conn = as_connection(target)
    return {"bootstrap_servers": conn.bootstrap, **conn.options}


def connection(settings: Settings, bootstrap: str) -> KafkaConnection:
    """The connection the settings describe. Raises `ConfigError` naming the setting when a
    certificate, key or CA file cannot be loaded (the files were checked to be readable when
    the settings were read; here their content is)."""
    protocol = settings.kafka_security_protocol
    options: dict[str, object] = {"security_protocol": protocol}
    if protocol.endswith("SSL"):
        options["ssl_context"] = _ssl_context(settings)
    if protocol.startswith("SASL_"):
        try:
            password = settings.kafka_password()
        except OSError as exc:
            raise ConfigError(f"{ENV_PREFIX}KAFKA_SASL_PASSWORD_FILE: {exc}") from None
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": password.get_secret_value() if password else None,
        }
    return KafkaConnection(bootstrap, options)


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    p = ENV_PREFIX
    cafile = settings.kafka_ssl_cafile
    try:
        context: ssl.SSLContext = create_ssl_context(cafile=cafile)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"{p}KAFKA_SSL_CAFILE: no CA certificate in {str(cafile)!r}: {exc}"
        ) from None
    if settings.kafka_ssl_certfile is not None:
        key_password = settings.kafka_ssl_key_password
        try:
            context.load_cert_chain(
                settings.kafka_ssl_certfile,
                settings.kafka_ssl_keyfile,
                # A callable, so that OpenSSL never prompts on a terminal for a missing one.
                lambda: key_password.get_secret_value() if key_password else "",
            )
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(
                f"{p}KAFKA_SSL_CERTFILE/{p}KAFKA_SSL_KEYFILE/{p}KAFKA_SSL_KEY_PASSWORD: cannot "
                f"load the client certificate and its key: {exc}"
            ) from None
    # aiokafka's context verifies the broker's certificate and its host name; only the latter
    # may be turned off (CERT_REQUIRED stays).
    context.check_hostname = settings.kafka_ssl_check_hostname
    return context


async def preflight(target: KafkaTarget, timeout_s: float = PREFLIGHT_TIMEOUT_S) -> None:
    """Connect to the bootstrap addresses as every client will until one accepts (TLS handshake,
    API versions, SASL authentication). Raises `BrokerError` saying for each address what
    failed and which setting to look at: the credentials, the CA, the protocol, the address."""
    conn = as_connection(target)
    failures: list[str] = []
    for address in conn.bootstrap.split(","):
        host, sep, port = address.strip().rpartition(":")
        if not sep:  # "host" alone: Kafka's default port, as the clients assume
            host, port = address.strip(), "9092"
        try:
            client = await asyncio.wait_for(
                create_conn(
                    host.strip("[]"),
                    int(port),
                    request_timeout_ms=int(timeout_s * 1000),
                    **conn.options,
                ),
                timeout_s,
            )
        except (OSError, KafkaError, TimeoutError, ValueError) as exc:
            failures.append(_explain(address.strip(), conn, exc))
            continue
        client.close()
        return
    raise BrokerError(failures[0] if len(failures) == 1 else "; ".join(failures))


def _explain(address: str, conn: KafkaConnection, exc: BaseException) -> str:
    """Why one address refused us, naming the setting to look at. Never quotes a secret."""
    p = ENV_PREFIX
    where = f"Kafka at {address} ({p}KAFKA_SECURITY_PROTOCOL={conn.protocol})"
    text = str(exc).lower()
    if isinstance(exc, SaslAuthenticationFailed):
        why = (
            f"refused the credentials: check {p}KAFKA_SASL_USERNAME, {p}KAFKA_SASL_PASSWORD "
            f"(or {p}KAFKA_SASL_PASSWORD_FILE) and {p}KAFKA_SASL_MECHANISM ({exc})"
        )
    elif isinstance(exc, UnsupportedSaslMechanismError):
        why = f"does not offer {p}KAFKA_SASL_MECHANISM: {exc}"
    elif isinstance(exc, ssl.SSLCertVerificationError) and (
        "hostname" in text or "ip address" in text
    ):
        why = (
            f"sent a certificate that does not name {address}: connect by a name the "
            f"certificate holds, or turn {p}KAFKA_SSL_CHECK_HOSTNAME off ({exc.verify_message})"
        )
    elif isinstance(exc, ssl.SSLCertVerificationError):
        why = (
            f"sent a certificate that is not trusted: {p}KAFKA_SSL_CAFILE must hold the CA that "
            f"signed it ({exc.verify_message})"
        )
    elif isinstance(exc, ssl.SSLError):
        why = (
            f"failed the TLS handshake ({exc.reason}): is that listener TLS "
            f"({p}KAFKA_SECURITY_PROTOCOL), and does it want a client certificate "
            f"({p}KAFKA_SSL_CERTFILE)?"
        )
    elif isinstance(exc, ValueError) or (
        isinstance(exc, OSError) and not isinstance(exc, ConnectionResetError)
    ):
        return f"cannot connect to Kafka at {address} ({p}KAFKA_BOOTSTRAP): {exc}"
    else:
        why = (
            f"did not answer a Kafka handshake ({type(exc).__name__}: {exc}): does that "
            f"listener speak {conn.protocol} ({p}KAFKA_SECURITY_PROTOCOL)?"
        )
    return f"{where} {why}"
