"""Topic configs the worker creates its topics with."""

from __future__ import annotations

from streams.kafka.clients import COMPACTED, TopicSpec

LIMIT = {"max.message.bytes": "1048588"}  # Apache Kafka's default, set explicitly


def test_a_replicated_topic_needs_all_but_one_replica_in_sync() -> None:
    spec = TopicSpec("pulse.kpi", config=dict(COMPACTED))
    assert spec.configs(3) == {"min.insync.replicas": "2", **LIMIT, **COMPACTED}
    assert spec.configs(2)["min.insync.replicas"] == "1"
    assert spec.configs(1) == LIMIT | COMPACTED  # nothing to require of a lone replica


def test_a_topic_s_own_min_insync_replicas_and_record_limit_win() -> None:
    spec = TopicSpec("pulse.kpi", config={"min.insync.replicas": "3", "max.message.bytes": "9"})
    assert spec.configs(3) == {"min.insync.replicas": "3", "max.message.bytes": "9"}
