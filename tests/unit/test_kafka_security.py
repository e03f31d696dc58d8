"""Kafka security settings: checked at start naming the variable, turned into aiokafka options,
and never printed. (Connecting for real: tests/integration/test_secure_kafka.py.)"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from streams.errors import BrokerError, ConfigError
from streams.kafka.connection import KafkaConnection, client_options, connection, preflight
from streams.settings import Settings, load_settings

SECRET = "Tr0ub4dor-and-3-not-in-any-log"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PULSE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PULSE_KAFKA_BOOTSTRAP", "b:9093")


def _sasl(monkeypatch: pytest.MonkeyPatch, protocol: str = "SASL_SSL") -> None:
    monkeypatch.setenv("PULSE_KAFKA_SECURITY_PROTOCOL", protocol)
    monkeypatch.setenv("PULSE_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("PULSE_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("PULSE_KAFKA_SASL_PASSWORD", SECRET)


def test_plaintext_by_default() -> None:
    kafka = connection(load_settings(), "127.0.0.1:9092")
    assert client_options(kafka) == {
        "bootstrap_servers": "127.0.0.1:9092",
        "security_protocol": "PLAINTEXT",
    }
    assert client_options("h:1") == {"bootstrap_servers": "h:1"}


def test_sasl_ssl_options_verify_the_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    _sasl(monkeypatch)
    options = client_options(connection(load_settings(), "b1:9093,b2:9093"))
    context = options.pop("ssl_context")
    assert options == {
        "bootstrap_servers": "b1:9093,b2:9093",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "svc",
        "sasl_plain_password": SECRET,
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True


def test_hostname_check_can_be_turned_off_but_not_verification(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PULSE_KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("PULSE_KAFKA_SSL_CHECK_HOSTNAME", "false")
    context = connection(load_settings(), "b:9093").options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname is False
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_password_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _sasl(monkeypatch, "SASL_PLAINTEXT")
    monkeypatch.delenv("PULSE_KAFKA_SASL_PASSWORD")
    secret_file = tmp_path / "password"
    secret_file.write_text(SECRET + "\n")
    monkeypatch.setenv("PULSE_KAFKA_SASL_PASSWORD_FILE", str(secret_file))
    options = connection(load_settings(), "b:9092").options
    assert options["sasl_plain_password"] == SECRET  # the trailing newline is no part of it
    assert "ssl_context" not in options


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PULSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "PULSE_KAFKA_SASL_MECHANISM is needed"),
        (
            {"PULSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "PULSE_KAFKA_SASL_MECHANISM": "PLAIN"},
            "PULSE_KAFKA_SASL_USERNAME is needed",
        ),
        (
            {
                "PULSE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "PULSE_KAFKA_SASL_MECHANISM": "PLAIN",
                "PULSE_KAFKA_SASL_USERNAME": "u",
            },
            "PULSE_KAFKA_SASL_PASSWORD or PULSE_KAFKA_SASL_PASSWORD_FILE is needed",
        ),
        ({"PULSE_KAFKA_SECURITY_PROTOCOL": "TLS"}, "PULSE_KAFKA_SECURITY_PROTOCOL"),
        (
            {"PULSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "PULSE_KAFKA_SASL_MECHANISM": "GSSAPI"},
            "PULSE_KAFKA_SASL_MECHANISM",
        ),
        ({"PULSE_KAFKA_SASL_PASSWORD": SECRET}, "PULSE_KAFKA_SASL_PASSWORD is set but"),
        ({"PULSE_KAFKA_SSL_CAFILE": "/etc/hostname"}, "PULSE_KAFKA_SSL_CAFILE is set but"),
        (
            {"PULSE_KAFKA_SECURITY_PROTOCOL": "SSL", "PULSE_KAFKA_SSL_CAFILE": "/no/such/ca.pem"},
            "PULSE_KAFKA_SSL_CAFILE: cannot read '/no/such/ca.pem'",
        ),
        (
            {"PULSE_KAFKA_SECURITY_PROTOCOL": "SSL", "PULSE_KAFKA_SSL_KEYFILE": "/etc/hostname"},
            "PULSE_KAFKA_SSL_KEYFILE needs PULSE_KAFKA_SSL_CERTFILE",
        ),
    ],
)
def test_incoherent_settings_fail_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=named) as failure:
        load_settings()
    assert SECRET not in str(failure.value)


def test_security_without_a_bootstrap_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _sasl(monkeypatch)
    monkeypatch.delenv("PULSE_KAFKA_BOOTSTRAP")
    with pytest.raises(ConfigError, match="SASL_SSL needs PULSE_KAFKA_BOOTSTRAP"):
        load_settings()


def test_both_password_sources_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _sasl(monkeypatch)
    monkeypatch.setenv("PULSE_KAFKA_SASL_PASSWORD_FILE", "/etc/hostname")
    with pytest.raises(ConfigError, match="not both") as failure:
        load_settings()
    assert SECRET not in str(failure.value)


@pytest.mark.parametrize("variable", ["PULSE_KAFKA_SSL_CAFILE", "PULSE_KAFKA_SSL_CERTFILE"])
def test_a_file_that_is_no_pem_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str
) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text(
        "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"
    )
    monkeypatch.setenv("PULSE_KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv(variable, str(garbage))
    with pytest.raises(ConfigError, match=variable):
        connection(load_settings(), "b:9093")


def test_secrets_never_in_a_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    _sasl(monkeypatch)
    monkeypatch.setenv("PULSE_KAFKA_SSL_KEY_PASSWORD", SECRET + "-key")
    monkeypatch.setenv("PULSE_KAFKA_SSL_CERTFILE", "/etc/hostname")
    settings = load_settings()
    kafka = KafkaConnection("b:9093", {"sasl_plain_password": SECRET})
    for text in (repr(settings), str(settings), repr(kafka), str(kafka), f"{kafka}"):
        assert SECRET not in text
    assert isinstance(settings, Settings)


def test_help_and_config_errors_of_the_cli_hold_no_secret() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
    env |= {"PULSE_KAFKA_SASL_PASSWORD": SECRET, "PULSE_KAFKA_BOOTSTRAP": "127.0.0.1:1"}
    for argv in (["--help"], ["worker", "--help"], ["worker"]):
        done = subprocess.run(
            [sys.executable, "-m", "streams.cli", *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        output = done.stdout + done.stderr
        assert SECRET not in output
    # the last one: a password without SASL is refused at start, naming it, exit 2
    assert done.returncode == 2
    assert "PULSE_KAFKA_SASL_PASSWORD is set but" in done.stderr


async def test_preflight_names_the_bootstrap_when_nothing_listens() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago, nobody listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(BrokerError, match=rf"127.0.0.1:{port} \(PULSE_KAFKA_BOOTSTRAP\)"):
        await preflight(f"127.0.0.1:{port}", timeout_s=5)
