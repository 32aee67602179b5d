"""Every event kind with a schema arrives on its documented topic, as the same JSON, valid against its schema."""

from __future__ import annotations

import json
import socket
import time
from importlib import resources
from typing import Any

import jsonschema
import pytest

from stream.broker import Broker
from stream.schemas import schema
from stream.sinks.mqtt import MqttConfig, MqttSink

# The documented mapping (stream/sinks/mqtt_topics.py): event type prefix -> topic under stream/<id>/.
TOPIC = {"speaker": "speaker", "sound": "sound/{rule}", "sound.tags": "tags", "beat": "beat", "level": "level"}


def event_types() -> list[str]:
    names = [p.name for p in resources.files("stream.schemas").iterdir()]
    return sorted(n[: -len(".json")] for n in names if n.endswith(".json"))


def example(event_type: str) -> dict[str, Any]:
    """The smallest event its schema accepts: every required field, at its minimum or a plain value."""
    spec = schema(event_type)
    now = time.time()
    values: dict[str, Any] = {"stream": "kitchen", "t_capture": now - 0.2, "t_publish": now, "rule": "Dog barking",
                              "chord": "C:maj", "previous": "N"}  # chord.changed labels have a pattern
    event = {}
    for key in spec["required"]:
        prop = spec["properties"][key]
        if "const" in prop:
            event[key] = prop["const"]
        elif key in values:
            event[key] = values[key]
        elif prop.get("type") in ("number", "integer"):
            low = prop.get("minimum", prop.get("exclusiveMinimum", min(prop.get("maximum", 1), 1) - 1))
            event[key] = low + 1 if prop["type"] == "integer" else low + min(0.5, prop.get("maximum", 1) - low) / 2
        elif prop.get("type") == "boolean":
            event[key] = True
        elif prop.get("type") == "array":
            event[key] = []
        else:
            event[key] = prop.get("examples", ["spk1"])[0]  # a string: the schema's own example when it has a format
    jsonschema.validate(event, spec)
    return event


async def test_every_event_kind_arrives_as_documented(broker: Broker, record) -> None:  # noqa: ANN001
    events = [example(t) for t in event_types()]
    assert {"level", "speaker.turn", "speaker.active"} <= {e["type"] for e in events}
    sink = MqttSink(MqttConfig(url=broker.url, stream="kitchen", rules=("Dog barking",)))
    async with record(broker.port, "stream/kitchen/#") as rec:
        await sink.start()
        for event in events:
            await sink.publish(event)
        await rec.wait_for(lambda: sum(1 for t, _, _ in rec.messages if not t.endswith(("state", "availability"))
                                       and "/sync/" not in t) >= len(events))
        await sink.stop()
    arrived = [(t, json.loads(p)) for t, p, _ in rec.messages if p.startswith(b"{")]
    assert len(arrived) == len(events)
    for (topic, payload), event in zip(arrived, events, strict=True):
        kind = event["type"].split(".")[0]
        want = TOPIC.get(event["type"], TOPIC.get(kind, kind)).format(rule="dog_barking")
        assert topic == f"stream/kitchen/{want}"
        assert payload == event
        jsonschema.validate(payload, schema(event["type"]))
    states = {t: p for t, p, _ in rec.messages if t.endswith("/state")}
    assert states["stream/kitchen/speaker/state"] == b"spk1"  # speaker.active {label: spk1, active: true}


async def test_retained_states_follow_speakers_and_alerts(broker: Broker, record) -> None:  # noqa: ANN001
    sink = MqttSink(MqttConfig(url=broker.url, stream="kitchen", discovery=False))
    await sink.start()
    now = time.time()
    base = {"stream": "kitchen", "t_audio": 1.0, "t_capture": now, "t_publish": now, "confidence": 0.9, "start": 1.0}
    for label, active in [("alice", True), ("bob", True), ("alice", False)]:
        await sink.publish(base | {"type": "speaker.active", "label": label, "active": active})
    for kind in ("start", "stop", "start"):
        await sink.publish(base | {"type": f"sound.{kind}", "rule": "Smoke alarm", "score": 0.9})
    await sink.publish(base | {"type": "sound.tags", "duration": 1.0, "tags": [{"label": "Alarm", "score": 0.9}]})
    await sink.publish(base | {"type": "beat", "tempo": 121.04})
    await sink.stop()
    async with record(broker.port, "stream/kitchen/+/+") as late:  # a newcomer gets the retained states only
        await late.wait_for(lambda: len(late.messages) >= 3)
        async with record(broker.port, "stream/kitchen/sound/+/+") as alerts:
            await alerts.wait_for(lambda: len(alerts.messages) >= 1)
        async with record(broker.port, "stream/kitchen/speaker/+/state") as speaking:
            await speaking.wait_for(lambda: len(speaking.messages) >= 2)
    assert dict((t, p) for t, p, _ in late.messages) == {
        "stream/kitchen/speaker/state": b"bob",
        "stream/kitchen/speakers/state": b"1",
        "stream/kitchen/tempo/state": b"121.0",
    }
    assert sorted((t, p) for t, p, _ in speaking.messages) == [("stream/kitchen/speaker/alice/state", b"OFF"),
                                                               ("stream/kitchen/speaker/bob/state", b"ON")]
    assert alerts.messages == [("stream/kitchen/sound/smoke_alarm/state", b"ON", True)]


async def test_no_url_starts_and_stops_an_embedded_broker(record) -> None:  # noqa: ANN001
    sink = MqttSink(MqttConfig(stream="demo", discovery=False))
    await sink.start()
    assert sink.where is not None and sink.where.host == "127.0.0.1"
    async with record(sink.where.port, "stream/demo/level") as rec:
        event = example("level") | {"stream": "demo"}
        await sink.publish(event)
        await rec.wait_for(lambda: len(rec.messages) == 1)
    assert json.loads(rec.messages[0][1]) == event
    port = sink.where.port
    await sink.stop()
    with pytest.raises(OSError):  # mosquitto is gone with the sink
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
