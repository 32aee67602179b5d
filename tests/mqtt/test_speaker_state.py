"""The retained speaker state does not flap between turns (issue #21, bug 5): "none" waits `speaker_hold_s`.

Real mosquitto. A stops and B starts 50 ms later: the state goes "A" -> "B" (no "none" in between); after B
stops, "none" arrives once the 0.3 s hold has passed, and a stop of the sink sends a still-held "none" at once.
"""

from __future__ import annotations

import asyncio
import time

from stream.broker import Broker
from stream.sinks.mqtt import MqttConfig, MqttSink

STATE = "stream/room/speaker/state"


def changes(values: list[bytes]) -> list[bytes]:
    """The values without their re-sends (states are sent again after each window and announce)."""
    return [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]]


def active(label: str, on: bool) -> dict:
    now = time.time()
    return {"type": "speaker.active", "stream": "room", "t_audio": 1.0, "t_capture": now, "t_publish": now,
            "label": label, "confidence": 0.9, "active": on, "start": 1.0}


async def test_speaker_state_holds_none(broker: Broker, record) -> None:  # noqa: ANN001
    sink = MqttSink(MqttConfig(url=broker.url, stream="room", discovery=False, speaker_hold_s=0.3))
    async with record(broker.port, STATE) as rec:
        await sink.start()
        for event in (active("A", True), active("A", False)):
            await sink.publish(event)
        await asyncio.sleep(0.05)
        await sink.publish(active("B", True))
        await rec.wait_for(lambda: rec.on(STATE)[-1:] == [b"B"])
        await sink.publish(active("B", False))
        await asyncio.sleep(0.15)
        assert changes(rec.on(STATE)) == [b"A", b"B"]  # "none" is still held
        await rec.wait_for(lambda: rec.on(STATE)[-1:] == [b"none"], timeout_s=2.0)
        await sink.publish(active("C", True))
        await rec.wait_for(lambda: rec.on(STATE)[-1:] == [b"C"])
        await sink.publish(active("C", False))
        stopped = time.monotonic()
        await sink.stop()
        await rec.wait_for(lambda: rec.on(STATE)[-1:] == [b"none"])
        assert time.monotonic() - stopped < 0.3
    assert changes(rec.on(STATE)) == [b"A", b"B", b"none", b"C", b"none"]
