"""The MQTT sink's reconnect buffer: every event waits here until the broker acknowledged it (QoS 1 PUBACK).

While the broker is unreachable events pile up, bounded by `capacity` messages. Past the bound the **oldest**
message is dropped (a live listener cares more about what happens now than about a backlog) and counted by the
caller; current states (active speaker, alert ON/OFF) are kept apart by the sink, so a drop never leaves a stale
state behind. Delivery is at least once: a message is removed only after its PUBACK, so a connection lost
between the broker's receipt and its PUBACK repeats it once on reconnect; order is always kept.

`MemoryBuffer` is lost with the process; `DiskBuffer` (SQLite, one row per message) survives a restart of the
graph too, at the cost of a disk write per event.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One MQTT message waiting for delivery; `t_enqueue` (Unix seconds) measures the sink's latency."""

    topic: str
    payload: bytes
    t_enqueue: float


class Buffer(Protocol):
    capacity: int

    def push(self, item: Outgoing) -> int:
        """Append `item`; returns how many old messages were dropped to make room (0 or 1)."""
        ...

    def peek(self, n: int) -> list[tuple[int, Outgoing]]:
        """The oldest `n` messages with their ids (increasing), oldest first, without removing them."""
        ...

    def ack(self, last_id: int) -> None:
        """Remove every message up to id `last_id` (acknowledged; some may have been dropped meanwhile)."""
        ...

    def __len__(self) -> int: ...

    def close(self) -> None: ...


class MemoryBuffer:
    """A bounded deque: fast, lost when the process exits."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: deque[tuple[int, Outgoing]] = deque()
        self._next_id = 0

    def push(self, item: Outgoing) -> int:
        self._items.append((self._next_id, item))
        self._next_id += 1
        if len(self._items) > self.capacity:
            self._items.popleft()
            return 1
        return 0

    def peek(self, n: int) -> list[tuple[int, Outgoing]]:
        return [self._items[i] for i in range(min(n, len(self._items)))]

    def ack(self, last_id: int) -> None:
        while self._items and self._items[0][0] <= last_id:
            self._items.popleft()

    def __len__(self) -> int:
        return len(self._items)

    def close(self) -> None:
        self._items.clear()


class DiskBuffer:
    """A bounded SQLite queue in `path`: what was not delivered when the graph stopped is sent on its next start."""

    def __init__(self, path: Path, capacity: int) -> None:
        self.capacity = capacity
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)  # autocommit: each push is durable on its own
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " topic TEXT NOT NULL, payload BLOB NOT NULL, t_enqueue REAL NOT NULL)"
        )
        self._len = int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def push(self, item: Outgoing) -> int:
        self._db.execute(
            "INSERT INTO outbox (topic, payload, t_enqueue) VALUES (?, ?, ?)", (item.topic, item.payload, item.t_enqueue)
        )
        self._len += 1
        if self._len > self.capacity:
            self._db.execute("DELETE FROM outbox WHERE id = (SELECT MIN(id) FROM outbox)")
            self._len -= 1
            return 1
        return 0

    def peek(self, n: int) -> list[tuple[int, Outgoing]]:
        rows = self._db.execute("SELECT id, topic, payload, t_enqueue FROM outbox ORDER BY id LIMIT ?", (n,))
        return [(i, Outgoing(topic, bytes(payload), t)) for i, topic, payload, t in rows]

    def ack(self, last_id: int) -> None:
        self._len -= self._db.execute("DELETE FROM outbox WHERE id <= ?", (last_id,)).rowcount

    def __len__(self) -> int:
        return self._len

    def close(self) -> None:
        self._db.close()
