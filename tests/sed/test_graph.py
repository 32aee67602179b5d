"""The shipped smart-speaker graph (configs/smart-speaker.toml) on a real recording, every node its own process.

Data: ESC-50 1-100032-A-0 (a dog barking after a silent lead-in), played as fast as the graph takes it.
Guards: the graph ends by itself, the sed node emits exactly one dog_bark start/stop pair and sound.tags, every
event matches its schema, the latency histogram counts the alerts, and the silent lead-in is counted as gated.
The MQTT sink of the shipped graph is swapped for a JSONL file; the MQTT mapping is checked on its own below.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import jsonschema

from stream.graph import NodeEntry, Supervisor, check, load_graph, with_source
from stream.paths import REPO_ROOT
from stream.schemas import schema
from stream.sinks.mqtt_discovery import Entities, configs, rule_names
from stream.sinks.mqtt_topics import States, event_topic


async def test_smart_speaker_graph_on_a_dog_recording(tmp_path, data, run_metrics, yamnet):
    graph = with_source(load_graph(REPO_ROOT / "configs" / "smart-speaker.toml"),
                        str(data / "sed" / "esc50" / "1-100032-A-0.wav"))
    out = tmp_path / "events.jsonl"
    nodes = []
    for node in graph.nodes:
        if node.kind == "capture":
            node = replace(node, config={**node.config, "realtime": False})
        if node.name == "sinks":
            node = NodeEntry("sinks", node.kind, {"sinks": [{"kind": "jsonl", "path": str(out)}]}, node.inputs)
        nodes.append(node)
    graph = replace(graph, nodes=tuple(nodes), metrics_port=0)
    check(graph)
    assert await asyncio.wait_for(Supervisor(graph, tmp_path / "run").run(duration_s=120), 150) == 0
    events = [json.loads(line) for line in out.read_text().splitlines()]
    alerts = [(e["type"], e["rule"]) for e in events if e["type"] != "sound.tags"]
    assert alerts == [("sound.start", "dog_bark"), ("sound.stop", "dog_bark")]
    assert sum(e["type"] == "sound.tags" for e in events) == 4
    for event in events:
        jsonschema.validate(event, schema(event["type"]))
    metrics = run_metrics(tmp_path / "run" / "metrics")
    assert metrics.get("stream_event_latency_seconds_count", node="sed", event="sound.start") == 1
    assert metrics.get("stream_sed_gated_patches_total", node="sed", reason="silent") >= 5


def test_mqtt_binary_sensor_per_rule_and_retained_state():
    rules = rule_names(str(REPO_ROOT / "configs" / "alerts.toml"))
    assert len(rules) == 15
    announced = configs("homeassistant", "stream", Entities("home", rules, speaker=False))
    sensor = announced["homeassistant/binary_sensor/stream_home/sound_dog_bark/config"]
    assert sensor["device_class"] == "sound" and sensor["state_topic"] == "stream/home/sound/dog_bark/state"
    assert len(announced) == 15
    states = States("stream")
    start = {"type": "sound.start", "stream": "home", "rule": "dog_bark"}
    assert event_topic("stream", start) == "stream/home/sound/dog_bark"
    assert states.update(start) == {"stream/home/sound/dog_bark/state": "ON"}
    assert states.update(start | {"type": "sound.stop"}) == {"stream/home/sound/dog_bark/state": "OFF"}
    assert event_topic("stream", {"type": "sound.tags", "stream": "home"}) == "stream/home/tags"
