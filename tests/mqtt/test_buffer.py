"""The reconnect buffer: bounded, oldest dropped, and an acknowledgement never removes what was not sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.sinks.mqtt_buffer import Buffer, DiskBuffer, MemoryBuffer, Outgoing


@pytest.fixture(params=["memory", "disk"])
def buffer(request: pytest.FixtureRequest, tmp_path: Path) -> Buffer:
    return MemoryBuffer(4) if request.param == "memory" else DiskBuffer(tmp_path / "outbox.sqlite", 4)


def item(n: int) -> Outgoing:
    return Outgoing("stream/t/level", str(n).encode(), float(n))


def payloads(buffer: Buffer) -> list[int]:
    return [int(o.payload) for _, o in buffer.peek(100)]


def test_drops_while_a_window_is_in_flight_keep_unsent_messages(buffer: Buffer) -> None:
    for n in range(3):
        assert buffer.push(item(n)) == 0
    window = buffer.peek(2)  # 0, 1 in flight
    dropped = sum(buffer.push(item(n)) for n in range(3, 7))  # 7 messages for 4 places: 0, 1, 2 dropped
    assert (dropped, payloads(buffer)) == (3, [3, 4, 5, 6])
    buffer.ack(window[-1][0])  # the PUBACKs for 0 and 1 arrive: nothing unsent may go
    assert (len(buffer), payloads(buffer)) == (4, [3, 4, 5, 6])
    buffer.ack(buffer.peek(2)[-1][0])
    assert (len(buffer), payloads(buffer)) == (2, [5, 6])
    buffer.close()


def test_disk_buffer_reopens_with_its_backlog(tmp_path: Path) -> None:
    first = DiskBuffer(tmp_path / "outbox.sqlite", 10)
    for n in range(5):
        first.push(item(n))
    first.ack(first.peek(2)[-1][0])
    first.close()
    again = DiskBuffer(tmp_path / "outbox.sqlite", 10)
    assert (len(again), payloads(again)) == (3, [2, 3, 4])
    again.close()
