"""Topic configs the worker creates its topics with."""

from __future__ import annotations

from streams.kafka import COMPACTED, TopicSpec


def test_a_replicated_topic_needs_all_but_one_replica_in_sync() -> None:
    spec = TopicSpec("pulse.kpi", config=dict(COMPACTED))
    assert spec.configs(3) == {"min.insync.replicas": "2", **COMPACTED}
    assert spec.configs(2)["min.insync.replicas"] == "1"
    assert spec.configs(1) == COMPACTED  # nothing to require of a lone replica


def test_a_topic_s_own_min_insync_replicas_wins() -> None:
    spec = TopicSpec("pulse.kpi", config={"min.insync.replicas": "3"})
    assert spec.configs(3) == {"min.insync.replicas": "3"}
