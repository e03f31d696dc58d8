"""The merge stage's Faust app, built from our `Settings` (no module-level app, no settings of
its own).

What Faust is asked to do, and why (FIELD-NOTES, measured on these machines):
- `broker_session_timeout=10`: joining a group takes half the session timeout on the embedded
  broker (the default 60 s meant ~30 s before the first partial; 10 s gives ~5-7 s).
- `web_enabled=False`: Faust's web server binds 0.0.0.0 unless `web_bind` is set, and its
  `tables` view serves table contents. The stage's probes and gauges are ours to serve.
- `processing_guarantee="at_least_once"`: the embedded broker has no transactions. A partial
  replaces the previous one of its key, so reading one twice changes nothing.
- `topic_disable_leader=True`: no `__assignor-__leader` topic to create; one app per group.
- The faust, mode and aiokafka loggers at WARNING: records are built even when filtered later
  (~13% of CPU).
"""

from __future__ import annotations

import logging

import faust

from streams.kafka.clients import quiet_kafka_logs
from streams.kafka.kpi_topic import PARTIALS_PARTITIONS
from streams.settings import Settings

SESSION_TIMEOUT_S = 10


def quiet_faust_logs() -> None:
    quiet_kafka_logs()
    for name in ("faust", "mode"):
        logging.getLogger(name).setLevel(logging.WARNING)


def build_app(settings: Settings, bootstrap: str) -> faust.App:
    """A Faust app for the merge stage: group and table changelogs named after
    `settings.merge_app_id`, in-memory tables rebuilt from their changelogs on start."""
    quiet_faust_logs()
    return faust.App(
        settings.merge_app_id,
        broker=f"kafka://{bootstrap}",
        autodiscover=False,
        web_enabled=False,
        broker_session_timeout=SESSION_TIMEOUT_S,
        processing_guarantee="at_least_once",
        store="memory://",
        topic_partitions=PARTIALS_PARTITIONS,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        key_serializer="json",
        value_serializer="json",
    )
