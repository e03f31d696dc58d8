"""The merge stage's Faust app is built from our settings, with the workarounds FIELD-NOTES
measured (no broker needed: the app is only configured here)."""

from __future__ import annotations

import logging

from streams.merge.app import build_app
from streams.settings import Settings


def test_the_faust_app_comes_from_our_settings_with_the_measured_workarounds() -> None:
    settings = Settings(topic_prefix="acme", metrics_port=0)
    conf = build_app(settings, "127.0.0.1:9092").conf
    assert conf.id == "acme-merge"  # consumer group and table changelog prefix
    assert conf.broker_session_timeout == 10  # joining takes half of it (default 60 s: ~30 s)
    assert conf.web_enabled is False  # else bound to 0.0.0.0, serving table contents
    assert conf.processing_guarantee.value == "at_least_once"  # the embedded broker: no EOS
    assert conf.topic_disable_leader is True
    for name in ("faust", "mode", "aiokafka"):  # records are built even when filtered later
        assert logging.getLogger(name).level == logging.WARNING
