"""All configuration in one validated object, read from `PULSE_*` environment variables.

A missing or wrong value fails at start with a `ConfigError` naming the variable.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from streams.core.fiscal import FiscalSpec
from streams.core.validation import ValidationLimits
from streams.errors import ConfigError

ENV_PREFIX = "PULSE_"

DEFAULT_FX_RATES = "USD=0.92,GBP=1.17"
"""Static fallback rates: units of the reporting currency (EUR) per one unit of each currency."""
DETECTOR_FAMILIES = 6
"""Gauge samples per watched series: score, observed, expected, lower, upper, active."""


class Settings(BaseSettings):
    """Worker, demo and bench settings. Field `x` is read from `PULSE_X`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    kafka_bootstrap: str | None = Field(
        default=None, description="host:port[,host:port]; unset = start the embedded broker."
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT",
        description="How every Kafka client connects: SSL = TLS; SASL_* = with a user name and "
        "password (README, 'Connecting to a secured cluster').",
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, description="Needed with SASL_SSL and SASL_PLAINTEXT."
    )
    kafka_sasl_username: str | None = Field(default=None, min_length=1)
    kafka_sasl_password: SecretStr | None = Field(
        default=None, description="Or PULSE_KAFKA_SASL_PASSWORD_FILE; never logged."
    )
    kafka_sasl_password_file: Path | None = Field(
        default=None,
        description="A file holding the SASL password (e.g. a mounted secret); one trailing "
        "newline is ignored.",
    )
    kafka_ssl_cafile: Path | None = Field(
        default=None,
        description="PEM file of the CA(s) that signed the brokers' certificates; unset = the "
        "system's trusted CAs.",
    )
    kafka_ssl_certfile: Path | None = Field(
        default=None, description="PEM client certificate, for brokers that require one (mTLS)."
    )
    kafka_ssl_keyfile: Path | None = Field(
        default=None, description="PEM private key of the client certificate."
    )
    kafka_ssl_key_password: SecretStr | None = Field(
        default=None, description="Password of an encrypted PULSE_KAFKA_SSL_KEYFILE."
    )
    kafka_ssl_check_hostname: bool = Field(
        default=True,
        description="Check that a broker's certificate names the host connected to; turn off "
        "only for brokers reached under another name than their certificate's.",
    )
    topic_prefix: str = Field(default="pulse", pattern=r"^[A-Za-z0-9._-]+$")
    input_topics: Annotated[tuple[str, ...], NoDecode] = Field(
        default=("pulse.events",), description="Comma-separated input topics."
    )
    consumer_group: str = Field(default="pulse-worker", min_length=1)
    reporting_currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    fx_rates: Annotated[dict[str, Decimal], NoDecode] = Field(
        default_factory=lambda: _parse_rates(DEFAULT_FX_RATES),
        description="CUR=rate,... units of reporting currency per unit of CUR.",
    )
    business_timezone: str = Field(
        default="UTC",
        description="IANA time zone of the business day and month, e.g. Europe/Berlin.",
    )
    watermark_delay_seconds: float = Field(default=5.0, ge=0)
    allowed_lateness_seconds: float = Field(default=60.0, ge=0)
    restatement_alert_change: Decimal = Field(
        default=Decimal("0.01"),
        ge=0,
        description="A restated KPI value that moved by more than this from the value first "
        "published (0.01: one point of a ratio such as budget variance) counts as material "
        "in pulse_restatements_total and raises PulsePeriodRestated.",
    )
    restatement_days: int = Field(
        default=92,
        ge=0,
        le=3660,
        description="Days after a period (the 1mo window) is final during which an event of "
        "that period (a budget revision, a late expense) restates it: its records are "
        "published again with "
        "the next revision; later ones are dead-lettered late (0: no restatements).",
    )
    fiscal_calendar: str = Field(
        default="",
        description="Fiscal calendar for budget variance per fiscal period (fp), quarter (fq) "
        "and year to date (fytd), next to the calendar month: months:M (a fiscal year of "
        "calendar months from month M, e.g. months:4), or 4-4-5:M[:WD], 4-5-4:M[:WD], "
        "5-4-4:M[:WD] (52/53-week years starting on weekday WD, mon..sun, nearest the 1st of "
        "month M; 4-5-4:2:sun is the NRF calendar). Empty: off.",
    )
    source_idle_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Event-time seconds a source (the envelope's `source`) may trail the newest "
        "source of its partition and still hold the watermark back; past that it is idle and "
        "its events are judged against the others' progress. 300 s: a publisher up to 5 "
        "minutes behind is counted in full, and a source silent that long is the one "
        "completeness calls stale (PULSE_STALE_AFTER_SECONDS). While active, a silent source "
        "holds its partition's windows only by its arrival lag (how far behind the others its "
        "last event came), so a rare but timely one holds nothing back.",
    )
    retained_windows: int = Field(default=10, ge=1, description="Closed windows kept per key.")
    dedupe_max_entries: int = Field(default=1_000_000, ge=1)
    join_max_entries: int = Field(
        default=1_000_000,
        ge=1,
        description="Open order starts and waiting deliveries of the cycle-time join kept per "
        "source partition (~200 bytes each); past it the oldest go, counted in "
        "pulse_join_evictions_total, and a delivery of such an order gets no cycle time.",
    )
    changelog_snapshot_records: int = Field(
        default=10_000,
        ge=0,
        description="Changelog records of a partition after which its whole state is written "
        "once more and the log before that deleted, bounding recovery time and disk (0: never; "
        "needs a broker with DeleteRecords).",
    )
    max_dimension_values: int = Field(
        default=1000, ge=1, description="Distinct values per dimension before folding to 'other'."
    )
    max_series_per_kpi: int = Field(
        default=1000,
        ge=1,
        description="Distinct dimension-value combinations per set of KPI dimensions (e.g. "
        "business_unit x region) before new ones fold into the all-'other' combination.",
    )
    max_series: int = Field(
        default=50_000,
        ge=1,
        description="Series /metrics may show in all (about 6 MB): detector families take "
        "6 x max_watched_series of it, KPI gauges the rest; past it new combinations fold.",
    )
    max_watched_series: int = Field(
        default=2000,
        ge=1,
        description="KPI series the anomaly detectors watch (totals first, then per dimension, "
        "then per combination); series idle for 96 of their windows are forgotten.",
    )
    export_bands: Literal["totals", "all"] = Field(
        default="totals",
        description="Watched series whose anomaly score and expected band /metrics shows: "
        "company totals plus every series with an open alert (totals), or every watched series "
        "(all: up to 5 x max_watched_series more samples, for debugging a detector).",
    )
    max_event_bytes: int = Field(default=65536, ge=256)
    key_policy: Literal["warn", "require"] = Field(
        default="warn",
        description="Input records without a Kafka key (README, 'Keys'): warn = counted in "
        "pulse_unkeyed_events_total and logged once per topic, then processed; require = "
        "dead-lettered with reason 'unkeyed'. Dedupe of resends and the order/delivery join "
        "are exact only when every resend and every event of one order lands on one partition.",
    )
    max_future_skew_seconds: float = Field(default=300.0, ge=0)
    max_bad_ratio: float = Field(default=0.5, gt=0, le=1)
    bad_ratio_window: int = Field(default=1000, ge=10)
    detection: bool = Field(
        default=True, description="Watch every KPI series for anomalies (pulse.anomalies)."
    )
    stale_after_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Shortest silence after which a source is stale (longer for sources that "
        "are usually quiet longer).",
    )
    merge_stage: bool = Field(
        default=False,
        description="A merge stage (`pulse merge`) publishes the company-wide KPI values to "
        "<prefix>.kpi; workers then publish their per-partition partials to <prefix>.partials and "
        "nothing of their own to <prefix>.kpi (their own values stay on their /metrics), and "
        "the merge stage scores the company-wide series (workers judge only their sources' "
        "freshness).",
    )
    processing_guarantee: Literal["auto", "exactly_once", "at_least_once"] = Field(
        default="auto",
        description="auto: Kafka transactions when the broker has them (exactly-once), else "
        "at-least-once with idempotent state; exactly_once: refuse to start without them.",
    )
    liveness_timeout_seconds: float = Field(
        default=120.0,
        gt=0,
        description="/healthz fails when the consume loop has not come round for this long "
        "(a stuck agent), except while partitions are being recovered.",
    )
    batch_max_records: int = Field(default=5000, ge=1, le=50_000)
    session_timeout_ms: int = Field(default=10000, ge=6000)
    fetch_max_wait_ms: int = Field(
        default=25,
        ge=1,
        le=500,
        description="Longest a broker may hold the worker's fetch when no new records are there. "
        "The embedded broker holds a fetch for about this long even when records arrive "
        "meanwhile: at 500 (the client's default) that adds 120 ms at the median and 300 ms at "
        "p99 to publish -> applied, at 25 about 17 and 47 ms, for ~40 empty fetches a second "
        "from a caught-up worker.",
    )
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9464, ge=0, le=65535)
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="text: one line per record for people; json: one JSON object per line "
        "(time, level, logger, message, exception) for a log collector (streams/logs.py).",
    )

    @model_validator(mode="after")
    def _room_for_kpis(self) -> Settings:
        reserved = DETECTOR_FAMILIES * self.max_watched_series
        if self.detection and self.max_series <= reserved:
            raise ValueError(
                f"{ENV_PREFIX}MAX_SERIES must exceed {DETECTOR_FAMILIES} x "
                f"{ENV_PREFIX}MAX_WATCHED_SERIES ({reserved}) so KPI gauges have room"
            )
        return self

    @model_validator(mode="after")
    def _coherent_security(self) -> Settings:
        problems = security_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def kafka_password(self) -> SecretStr | None:
        """The SASL password, from PULSE_KAFKA_SASL_PASSWORD or the file it is in (read now)."""
        if self.kafka_sasl_password_file is None:
            return self.kafka_sasl_password
        text = self.kafka_sasl_password_file.read_text(encoding="utf-8")
        return SecretStr(text.removesuffix("\n").removesuffix("\r"))

    @property
    def kpi_series_budget(self) -> int:
        """Series left to KPI gauges once the detector families have their share."""
        reserved = DETECTOR_FAMILIES * self.max_watched_series if self.detection else 0
        return self.max_series - reserved

    @property
    def validation_limits(self) -> ValidationLimits:
        """What every decoder of input events bounds them by (size, future skew)."""
        return ValidationLimits(self.max_event_bytes, self.max_future_skew_seconds)

    @field_validator("input_topics", mode="before")
    @classmethod
    def _split_topics(cls, value: object) -> object:
        if isinstance(value, str):
            topics = tuple(t.strip() for t in value.split(",") if t.strip())
            if not topics:
                raise ValueError("needs at least one topic")
            return topics
        return value

    @field_validator("business_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value

    @field_validator("fiscal_calendar")
    @classmethod
    def _fiscal_calendar(cls, value: str) -> str:
        if value.strip():
            try:
                FiscalSpec.parse(value)
            except ConfigError as exc:
                raise ValueError(str(exc).removeprefix("PULSE_FISCAL_CALENDAR=")) from None
        return value.strip()

    @field_validator("fx_rates", mode="before")
    @classmethod
    def _parse_fx(cls, value: object) -> object:
        return _parse_rates(value) if isinstance(value, str) else value

    @property
    def deadletter_topic(self) -> str:
        return f"{self.topic_prefix}.deadletter"

    @property
    def kpi_topic(self) -> str:
        return f"{self.topic_prefix}.kpi"

    @property
    def partials_topic(self) -> str:
        """Per-partition parts of closed windows, and progress, for the merge stage."""
        return f"{self.topic_prefix}.partials"

    @property
    def merge_app_id(self) -> str:
        """The merge stage's Faust app id: its consumer group and table changelog prefix."""
        return f"{self.topic_prefix}-merge"

    @property
    def anomalies_topic(self) -> str:
        return f"{self.topic_prefix}.anomalies"

    @property
    def rates_topic(self) -> str:
        """FX rates from every input partition, read in full by every worker (compacted)."""
        return f"{self.topic_prefix}.rates"

    def changelog_topic(self, input_topic: str) -> str:
        """The write-ahead log of one input topic's state, one partition per input partition."""
        return f"{self.topic_prefix}.{self.consumer_group}.{input_topic}.changelog"


def security_problems(settings: Settings) -> list[str]:
    """What is missing or contradictory in the Kafka security settings, each naming its
    variable (a setting that would be ignored is refused, not silently dropped). Never
    includes a secret's value."""
    p = ENV_PREFIX
    protocol = settings.kafka_security_protocol
    sasl, tls = protocol.startswith("SASL_"), protocol.endswith("SSL")
    problems = []
    if protocol != "PLAINTEXT" and not settings.kafka_bootstrap:
        problems.append(
            f"{p}KAFKA_SECURITY_PROTOCOL={protocol} needs {p}KAFKA_BOOTSTRAP (the embedded "
            "broker speaks PLAINTEXT only)"
        )
    given = {
        "KAFKA_SASL_MECHANISM": settings.kafka_sasl_mechanism,
        "KAFKA_SASL_USERNAME": settings.kafka_sasl_username,
        "KAFKA_SASL_PASSWORD": settings.kafka_sasl_password,
        "KAFKA_SASL_PASSWORD_FILE": settings.kafka_sasl_password_file,
    }
    if sasl:
        for name in ("KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME"):
            if given[name] is None:
                problems.append(f"{p}{name} is needed with {p}KAFKA_SECURITY_PROTOCOL={protocol}")
        password, password_file = settings.kafka_sasl_password, settings.kafka_sasl_password_file
        if password is None and password_file is None:
            problems.append(
                f"{p}KAFKA_SASL_PASSWORD or {p}KAFKA_SASL_PASSWORD_FILE is needed with "
                f"{p}KAFKA_SECURITY_PROTOCOL={protocol}"
            )
        elif password is not None and password_file is not None:
            problems.append(f"set {p}KAFKA_SASL_PASSWORD or {p}KAFKA_SASL_PASSWORD_FILE, not both")
    else:
        problems += [
            f"{p}{name} is set but {p}KAFKA_SECURITY_PROTOCOL={protocol} uses no SASL "
            "(use SASL_SSL or SASL_PLAINTEXT)"
            for name, value in given.items()
            if value is not None
        ]
    files = {
        "KAFKA_SASL_PASSWORD_FILE": settings.kafka_sasl_password_file,
        "KAFKA_SSL_CAFILE": settings.kafka_ssl_cafile,
        "KAFKA_SSL_CERTFILE": settings.kafka_ssl_certfile,
        "KAFKA_SSL_KEYFILE": settings.kafka_ssl_keyfile,
    }
    if not tls:
        problems += [
            f"{p}{name} is set but {p}KAFKA_SECURITY_PROTOCOL={protocol} uses no TLS "
            "(use SSL or SASL_SSL)"
            for name, value in files.items()
            if value is not None and name.startswith("KAFKA_SSL_")
        ]
    for name, path in files.items():
        if path is not None and not (path.is_file() and os.access(path, os.R_OK)):
            problems.append(f"{p}{name}: cannot read {str(path)!r}")
    if settings.kafka_ssl_keyfile is not None and settings.kafka_ssl_certfile is None:
        problems.append(f"{p}KAFKA_SSL_KEYFILE needs {p}KAFKA_SSL_CERTFILE")
    if settings.kafka_ssl_key_password is not None and settings.kafka_ssl_certfile is None:
        problems.append(f"{p}KAFKA_SSL_KEY_PASSWORD needs {p}KAFKA_SSL_CERTFILE")
    return problems


def _parse_rates(text: str) -> dict[str, Decimal]:
    rates: dict[str, Decimal] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        code, sep, rate = item.partition("=")
        if not sep or len(code) != 3 or not code.isupper():
            raise ValueError(f"expected CUR=rate, got {item!r}")
        try:
            value = Decimal(rate)
        except ArithmeticError:
            raise ValueError(f"rate for {code} is not a number: {rate!r}") from None
        if not value.is_finite() or value <= 0:
            raise ValueError(f"rate for {code} must be a positive number, got {rate!r}")
        rates[code] = value
    return rates


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """`PULSE_*` variables that are no setting, each with the closest real name if any: a
    misspelled variable would otherwise be ignored and its default used without a word."""
    known = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    problems = []
    for name in sorted(n for n in environ if n.startswith(ENV_PREFIX) and n not in known):
        close = difflib.get_close_matches(name, sorted(known), n=1)
        problems.append(f"{name} is no setting" + (f" (did you mean {close[0]}?)" if close else ""))
    return problems


def load_settings(**overrides: object) -> Settings:
    """Read the environment (and explicit overrides, e.g. from CLI flags) into `Settings`.

    Raises `ConfigError` naming every bad variable, and every `PULSE_*` variable that is no
    setting (with the closest real name).
    """
    unknown = unknown_variables(os.environ)
    if unknown:
        raise ConfigError("invalid configuration: " + "; ".join(unknown))
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"][:1])
            if not field:  # a check across fields names them in its message
                problems.append(error["msg"].removeprefix("Value error, "))
                continue
            problems.append(f"{ENV_PREFIX}{field.upper()}: {error['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from exc
