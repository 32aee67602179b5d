"""`stream listen --mqtt`: events come back as they were published; states and availability are not events."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from asyncio.subprocess import PIPE

import pytest

from stream.broker import Broker, BrokerError
from stream.sinks.mqtt import MqttConfig, MqttSink
from stream.sinks.mqtt_listen import events


async def test_listen_yields_exactly_the_published_events(broker: Broker) -> None:
    now = time.time()
    base = {"stream": "hall", "t_audio": 0.5, "t_capture": now, "t_publish": now, "confidence": 0.7, "start": 0.5}
    sent = [
        base | {"type": "speaker.active", "label": "spk0", "active": True},
        base | {"type": "sound.start", "rule": "Glass", "score": 0.9},
        base | {"type": "speaker.turn", "label": "spk0", "stop": 2.0},
    ]
    got: list[dict] = []

    async def listen() -> None:
        async for event in events(broker.url):
            got.append(event)

    task = asyncio.create_task(listen())
    sink = MqttSink(MqttConfig(url=broker.url, stream="hall", rules=("Glass",)))
    await sink.start()
    while not got:  # until the listener is subscribed: level events it may see, before ours
        await sink.publish(base | {"type": "level", "duration": 0.1, "rms_dbfs": -40.0, "peak_dbfs": -30.0})
        await asyncio.sleep(0.05)
    for event in sent:
        await sink.publish(event)
    await sink.stop()
    for _ in range(250):
        if len([e for e in got if e["type"] != "level"]) >= len(sent):
            break
        await asyncio.sleep(0.02)
    task.cancel()
    assert [e for e in got if e["type"] != "level"] == sent


async def test_listen_to_a_broker_that_is_not_there_names_it() -> None:
    with Broker() as gone:
        url = gone.url
    with pytest.raises(BrokerError, match=url.replace(".", r"\.")):
        async for _ in events(url):
            pass


async def test_stream_listen_mqtt_prints_json_lines(broker: Broker) -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "stream.cli", "listen", "--mqtt", broker.url,
                                                "--json", "--count", "3", "--topic", "level/", stdout=PIPE)
    sink = MqttSink(MqttConfig(url=broker.url, stream="hall", discovery=False))
    await sink.start()
    now = time.time()
    seq = 0
    while proc.returncode is None and seq < 2000:  # until it has subscribed and seen 3 level events
        await sink.publish({"type": "level", "stream": "hall", "t_audio": seq * 0.1, "t_capture": now, "t_publish": now,
                            "duration": 0.1, "rms_dbfs": -40.0, "peak_dbfs": -30.0})
        await sink.publish({"type": "speaker.turn", "stream": "hall", "t_audio": 0.0, "t_capture": now,
                            "t_publish": now, "label": "spk0", "confidence": 0.5, "start": 0.0, "stop": 1.0})
        seq += 1
        await asyncio.sleep(0.01)
    out, _ = await asyncio.wait_for(proc.communicate(), 10)
    await sink.stop()
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert [e["type"] for e in lines] == ["level"] * 3
    assert [round((b["t_audio"] - a["t_audio"]) * 10) for a, b in zip(lines, lines[1:])] == [1, 1]  # in order


async def test_listen_shows_availability_changes(broker: Broker) -> None:
    """Issue #21: `stream listen --mqtt` never showed availability; now a graph going online/offline is shown."""
    got: list[dict] = []

    async def listen() -> None:
        async for event in events(broker.url, availability=True):
            got.append(event)

    task = asyncio.create_task(listen())
    await asyncio.sleep(0.3)  # subscribed
    sink = MqttSink(MqttConfig(url=broker.url, stream="hall", discovery=False))
    await sink.start()
    await sink.stop()
    for _ in range(250):
        if len(got) >= 2:
            break
        await asyncio.sleep(0.02)
    task.cancel()
    assert got[:2] == [{"type": "availability", "stream": "hall", "state": "online"},
                       {"type": "availability", "stream": "hall", "state": "offline"}]
