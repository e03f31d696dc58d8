"""Changelog replay with transactions (exactly-once) after a crash, when the crashed owner's
transaction is still open: a later owner's committed checkpoints lie beyond it.

Workers take a new transactional id at every start, so nothing fences a killed worker's open
transaction: the coordinator aborts it only after the transaction timeout (and its next sweep).
Until then the partition's last stable offset stays at that transaction's first record, while
the owners after it keep committing checkpoints behind it. A replay that stopped at the last
stable offset would leave those checkpoints out, resume at an older offset and write a second
branch of the changelog; once the old transaction is aborted, the next replay reads both
branches, ends on the shorter one's offset with the longer one's dedupe ids, and takes the events
between for duplicates: they are lost from every cell the shorter branch rewrote.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
import pytest
from apache_kafka import KafkaCluster

from streams.kafka.changelog import replay
from streams.kafka.clients import KEEP_FOREVER, TopicSpec, ensure_topics, new_producer

pytestmark = pytest.mark.fault


async def test_replay_includes_checkpoints_committed_behind_an_open_transaction(
    single_node: KafkaCluster,
) -> None:
    bootstrap = single_node.bootstrap
    tag = uuid.uuid4().hex[:8]
    topic = f"ft-{tag}.changelog"
    await ensure_topics(bootstrap, [TopicSpec(topic, 1, config=dict(KEEP_FOREVER))])

    def checkpoint(owner: str, next_offset: int) -> bytes:
        return orjson.dumps({"owner": owner, "next_offset": next_offset})

    crashed = new_producer(bootstrap, transactional_id=f"{tag}-crashed", enable_idempotence=True)
    successor = new_producer(
        bootstrap, transactional_id=f"{tag}-successor", enable_idempotence=True
    )
    await crashed.start()
    await successor.start()
    try:
        async with crashed.transaction():
            await crashed.send_and_wait(topic, checkpoint("first", 100), partition=0)
        await crashed.begin_transaction()  # the batch it was writing when killed
        await crashed.send_and_wait(topic, checkpoint("first", 200), partition=0)
        async with successor.transaction():  # the next owner, after replaying offset 100
            await successor.send_and_wait(topic, checkpoint("second", 300), partition=0)

        replayed: list[dict[str, Any]] = []
        replaying = asyncio.create_task(
            replay(bootstrap, topic, [0], lambda _, r: replayed.append(r), committed_only=True)
        )
        await asyncio.sleep(2.0)
        assert not replaying.done(), f"replay ended on the open transaction: {replayed}"

        # The coordinator aborts it (here at once: the same transactional id fences it).
        fencer = new_producer(bootstrap, transactional_id=f"{tag}-crashed", enable_idempotence=True)
        await fencer.start()
        await fencer.stop()
        assert await asyncio.wait_for(replaying, 30) == 2
    finally:
        await successor.stop()
        await crashed.stop()
    assert [r["owner"] for r in replayed] == ["first", "second"]
    assert replayed[-1]["next_offset"] == 300  # where the state really is
