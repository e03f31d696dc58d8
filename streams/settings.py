"""All configuration in one validated object, read from `PULSE_*` environment variables.

A missing or wrong value fails at start with a `ConfigError` naming the variable.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from streams.errors import ConfigError

ENV_PREFIX = "PULSE_"

DEFAULT_FX_RATES = "USD=0.92,GBP=1.17"
"""Static fallback rates: units of the reporting currency (EUR) per one unit of each currency."""


class Settings(BaseSettings):
    """Worker, demo and bench settings. Field `x` is read from `PULSE_X`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    kafka_bootstrap: str | None = Field(
        default=None, description="host:port[,host:port]; unset = start the embedded broker."
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
    max_event_bytes: int = Field(default=65536, ge=256)
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
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9464, ge=0, le=65535)
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")

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
    def anomalies_topic(self) -> str:
        return f"{self.topic_prefix}.anomalies"

    def changelog_topic(self, input_topic: str) -> str:
        """The write-ahead log of one input topic's state, one partition per input partition."""
        return f"{self.topic_prefix}.{self.consumer_group}.{input_topic}.changelog"


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


def load_settings(**overrides: object) -> Settings:
    """Read the environment (and explicit overrides, e.g. from CLI flags) into `Settings`.

    Raises `ConfigError` naming every bad variable.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"][:1])
            problems.append(f"{ENV_PREFIX}{field.upper()}: {error['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from exc
