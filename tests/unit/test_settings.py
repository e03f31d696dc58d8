"""Settings from PULSE_* environment variables: defaults, parsing, errors naming the variable."""

from __future__ import annotations

import os
from decimal import Decimal

import pytest
from pydantic import ValidationError

from streams.errors import ConfigError, FatalError
from streams.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """Whatever the shell running the tests exports must not leak into them."""
    for name in list(os.environ):
        if name.startswith("PULSE_"):
            monkeypatch.delenv(name)


def test_defaults():
    settings = load_settings()

    assert settings.kafka_bootstrap is None
    assert settings.topic_prefix == "pulse"
    assert settings.input_topics == ("pulse.events",)
    assert settings.consumer_group == "pulse-worker"
    assert settings.reporting_currency == "EUR"
    assert settings.fx_rates == {"USD": Decimal("0.92"), "GBP": Decimal("1.17")}
    assert settings.business_timezone == "UTC"
    assert settings.watermark_delay_seconds == 5.0
    assert settings.allowed_lateness_seconds == 60.0
    assert settings.retained_windows == 10
    assert settings.dedupe_max_entries == 1_000_000
    assert settings.max_event_bytes == 65536
    assert settings.max_series_per_kpi == 1000
    assert settings.max_series == 50_000
    assert settings.max_watched_series == 2000
    assert settings.kpi_series_budget == 50_000 - 6 * 2000
    assert settings.max_future_skew_seconds == 300.0
    assert settings.max_bad_ratio == 0.5
    assert settings.bad_ratio_window == 1000
    assert settings.batch_max_records == 5000
    assert settings.session_timeout_ms == 10000
    assert settings.fetch_max_wait_ms == 25
    assert (settings.metrics_host, settings.metrics_port) == ("127.0.0.1", 9464)
    assert settings.log_level == "INFO"


def test_derived_topic_names(monkeypatch):
    monkeypatch.setenv("PULSE_TOPIC_PREFIX", "acme")
    monkeypatch.setenv("PULSE_CONSUMER_GROUP", "kpi")
    settings = load_settings()

    assert settings.deadletter_topic == "acme.deadletter"
    assert settings.changelog_topic("orders") == "acme.kpi.orders.changelog"


def test_numbers_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("PULSE_RETAINED_WINDOWS", "300")
    monkeypatch.setenv("PULSE_MAX_BAD_RATIO", "0.25")
    monkeypatch.setenv("PULSE_KAFKA_BOOTSTRAP", "kafka-1:9092,kafka-2:9092")

    settings = load_settings()

    assert settings.retained_windows == 300
    assert settings.max_bad_ratio == 0.25
    assert settings.kafka_bootstrap == "kafka-1:9092,kafka-2:9092"


@pytest.mark.parametrize(
    ("value", "topics"),
    [("a, b", ("a", "b")), ("orders", ("orders",)), (" a ,, b ,", ("a", "b"))],
)
def test_input_topics_are_comma_separated(monkeypatch, value, topics):
    monkeypatch.setenv("PULSE_INPUT_TOPICS", value)

    assert load_settings().input_topics == topics


@pytest.mark.parametrize(
    ("value", "rates"),
    [
        ("USD=0.92,GBP=1.17", {"USD": Decimal("0.92"), "GBP": Decimal("1.17")}),
        (" USD=0.9 , JPY=0.0062 ", {"USD": Decimal("0.9"), "JPY": Decimal("0.0062")}),
        ("CHF=1.05", {"CHF": Decimal("1.05")}),  # replaces the defaults, does not add to them
    ],
)
def test_fx_rates_are_parsed_exactly_as_decimals(monkeypatch, value, rates):
    monkeypatch.setenv("PULSE_FX_RATES", value)

    assert load_settings().fx_rates == rates


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PULSE_MAX_BAD_RATIO", "2"),
        ("PULSE_MAX_BAD_RATIO", "0"),
        ("PULSE_FX_RATES", "USD=x"),
        ("PULSE_FX_RATES", "usd=0.9"),
        ("PULSE_FX_RATES", "USD"),
        ("PULSE_FX_RATES", "USD=0"),
        ("PULSE_FX_RATES", "USD=-1"),
        ("PULSE_FX_RATES", "USD=NaN"),
        ("PULSE_RETAINED_WINDOWS", "0"),
        ("PULSE_RETAINED_WINDOWS", "sixty"),
        ("PULSE_INPUT_TOPICS", " , "),
        ("PULSE_REPORTING_CURRENCY", "euro"),
        ("PULSE_LOG_LEVEL", "verbose"),
        ("PULSE_METRICS_PORT", "70000"),
        ("PULSE_BAD_RATIO_WINDOW", "9"),
        ("PULSE_FETCH_MAX_WAIT_MS", "0"),
        ("PULSE_FETCH_MAX_WAIT_MS", "501"),
    ],
)
def test_a_bad_value_is_a_config_error_naming_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigError) as caught:
        load_settings()

    assert variable in str(caught.value)
    assert isinstance(caught.value, FatalError)


def test_every_bad_variable_is_named_at_once(monkeypatch):
    monkeypatch.setenv("PULSE_RETAINED_WINDOWS", "0")
    monkeypatch.setenv("PULSE_MAX_BAD_RATIO", "2")

    with pytest.raises(ConfigError) as caught:
        load_settings()

    assert "PULSE_RETAINED_WINDOWS" in str(caught.value)
    assert "PULSE_MAX_BAD_RATIO" in str(caught.value)


def test_explicit_overrides_win_and_are_validated_under_the_variable_name(monkeypatch):
    monkeypatch.setenv("PULSE_RETAINED_WINDOWS", "300")

    assert load_settings(retained_windows=60).retained_windows == 60
    with pytest.raises(ConfigError, match="PULSE_RETAINED_WINDOWS"):
        load_settings(retained_windows=0)


def test_a_misspelled_variable_stops_the_start_naming_it_and_the_closest_setting(monkeypatch):
    monkeypatch.setenv("PULSE_MAX_BAD_RATION", "0.1")  # PULSE_MAX_BAD_RATIO, misspelled
    monkeypatch.setenv("PULSE_WINDOW_SECONDS", "60")  # advertised once, never a setting

    with pytest.raises(ConfigError) as caught:
        load_settings()

    message = str(caught.value)
    assert "PULSE_MAX_BAD_RATION is no setting (did you mean PULSE_MAX_BAD_RATIO?)" in message
    assert "PULSE_WINDOW_SECONDS is no setting" in message


def test_an_unknown_setting_given_in_code_is_refused():
    with pytest.raises(ValidationError, match="window_seconds"):
        Settings(window_seconds=60)  # type: ignore[call-arg]


def test_the_series_budget_leaves_room_for_kpi_gauges(monkeypatch):
    monkeypatch.setenv("PULSE_MAX_SERIES", "12000")
    monkeypatch.setenv("PULSE_MAX_WATCHED_SERIES", "2000")

    with pytest.raises(ConfigError, match="PULSE_MAX_SERIES must exceed 6 x PULSE_MAX_WATCHED"):
        load_settings()

    monkeypatch.setenv("PULSE_DETECTION", "false")  # no detector families: all for KPIs
    assert load_settings().kpi_series_budget == 12000
