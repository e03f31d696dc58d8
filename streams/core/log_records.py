"""Changelog records of bounded size: spread over parts when large, reassembled on replay.

A Kafka broker refuses a record over the topic's `max.message.bytes` (1 MiB by default), and in a
transaction a refused record would take the whole batch with it. So every record kpi-pulse
writes to a changelog carries at most `RECORD_BYTES` of entries: a checkpoint or snapshot that
holds more is spread over several records, each marked `[index, count]` (`part` for a
checkpoint, `snapshot` for a snapshot) and each carrying the same header (`next_offset`, ...).

The parts of one record form a group that counts only when complete. Replay (`Groups`) holds
the parts back until the last one arrives; a group cut short by a crash (some parts written,
the rest not) is dropped, so the partition resumes at the offset of the last complete record
and the batch is read again: nothing of it is applied twice or half.
"""

from __future__ import annotations

from typing import Any

import orjson

RECORD_BYTES = 512 * 1024
"""Entries per changelog record, in bytes of JSON: half the 1 MiB a broker accepts by default,
leaving room for the header and the record's framing."""
STORE_LISTS = ("cells", "base", "dropped")
"""Lists inside a record's `store`."""
TOP_LISTS = ("join", "rates", "seen")
"""Lists at a record's top level."""
GROUP_MARKERS = ("part", "snapshot")

Record = dict[str, Any]


def spread(
    header: Record,
    store: Record,
    entries: dict[str, list[Any]],
    marker: str,
    record_bytes: int = RECORD_BYTES,
) -> list[Record]:
    """`entries` (by list name, in order) over as few records as keep each list's entries of
    one record within `record_bytes`; every record is `header` plus `store`'s other fields and
    `[index, count]` under `marker`. An entry larger than `record_bytes` gets a record alone.
    """
    records: list[Record] = []
    room = 0
    for name, items in entries.items():
        for item in items:
            size = len(orjson.dumps(item)) + 1  # and its comma
            if size > room and (room < record_bytes or not records):
                records.append(_empty(header, store))
                room = record_bytes
            target = records[-1]["store"] if name in STORE_LISTS else records[-1]
            target[name].append(item)
            room -= size
    if not records:
        records.append(_empty(header, store))
    for index, record in enumerate(records):
        record[marker] = [index, len(records)]
    return records


def split(record: Record, record_bytes: int = RECORD_BYTES) -> list[Record]:
    """A checkpoint as parts of at most `record_bytes` of entries each (itself alone if it
    fits); the parts, replayed together in order, give what the record gives."""
    store = dict(record["store"])
    entries = {name: store.pop(name) for name in STORE_LISTS}
    entries |= {name: record[name] for name in TOP_LISTS}
    header = {k: v for k, v in record.items() if k not in TOP_LISTS and k != "store"}
    parts = spread(header, store, entries, "part", record_bytes)
    if len(parts) == 1:
        del parts[0]["part"]
    return parts


def encode(record: Record, record_bytes: int = RECORD_BYTES) -> list[bytes]:
    """`record` as the bytes of one changelog record, or of its parts when it encodes to more
    than `record_bytes` (each part then holds at most `record_bytes` of entries, plus its small
    header and the JSON punctuation: well under a broker's default limit). Snapshot records
    are bounded already and pass as they are."""
    encoded = orjson.dumps(record)
    if len(encoded) <= record_bytes or any(m in record for m in GROUP_MARKERS):
        return [encoded]
    return [orjson.dumps(part) for part in split(record, record_bytes)]


def group_of(record: Record) -> tuple[int, int] | None:
    """`(index, count)` of a record that is one part of a group; None for a whole record."""
    for marker in GROUP_MARKERS:
        mark = record.get(marker)
        if mark is not None:
            return int(mark[0]), int(mark[1])
    return None


class Groups:
    """Reassembles one changelog partition's records in log order (see the module docstring).

    `feed` returns the records to apply now: a whole record at once, a group's parts once the
    last has arrived, nothing for a part in the middle of a group. `dropped` counts the parts
    of groups that never completed.
    """

    def __init__(self) -> None:
        self._parts: list[Record] = []
        self._count = 0
        self.dropped = 0

    def feed(self, record: Record) -> list[Record]:
        mark = group_of(record)
        if mark is None or mark == (0, 1):
            self._drop()
            return [record]
        index, count = mark
        if index == 0:
            self._drop()
            self._count = count
        elif not self._parts or index != len(self._parts) or count != self._count:
            self._drop()  # a part without the start of its group: never applied
            self.dropped += 1
            return []
        self._parts.append(record)
        if len(self._parts) < count:
            return []
        parts, self._parts = self._parts, []
        return parts

    def finish(self) -> int:
        """End of the log: drop an unfinished group; return how many parts were dropped."""
        self._drop()
        return self.dropped

    def _drop(self) -> None:
        self.dropped += len(self._parts)
        self._parts = []


def _empty(header: Record, store: Record) -> Record:
    """A record with no entries yet: `header`, and the store's other fields."""
    return header | {
        "store": {**{name: [] for name in STORE_LISTS}, **store},
        **{name: [] for name in TOP_LISTS},
    }
