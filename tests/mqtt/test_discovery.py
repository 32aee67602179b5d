"""Home Assistant discovery: required keys, state topics that really carry states, removal, birth re-announce."""

from __future__ import annotations

import json
import time

import aiomqtt

from stream.broker import Broker
from stream.sinks.mqtt import MqttConfig, MqttSink

# Keys HA's MQTT discovery needs per component (home-assistant.io/integrations/<component>.mqtt) and for a
# device in its registry (unique_id plus device.identifiers); availability lets HA mark entities unavailable.
COMMON = {"unique_id", "name", "device", "origin", "availability_topic", "payload_available", "payload_not_available"}
REQUIRED = {
    "binary_sensor": {"state_topic", "device_class", "payload_on", "payload_off"},
    "sensor": {"state_topic"},
    "event": {"state_topic", "event_types"},
}


async def test_configs_carry_home_assistant_keys_and_point_at_live_states(broker: Broker, record) -> None:  # noqa: ANN001
    sink = MqttSink(MqttConfig(url=broker.url, stream="kitchen", rules=("Dog barking", "Smoke alarm"), tempo=True))
    now = time.time()
    base = {"stream": "kitchen", "t_audio": 1.0, "t_capture": now, "t_publish": now}
    async with record(broker.port) as rec:
        await sink.start()
        await sink.publish(base | {"type": "sound.start", "rule": "Smoke alarm", "score": 0.9})
        await sink.publish(base | {"type": "beat", "tempo": 96.0})
        await sink.publish(base | {"type": "speaker.active", "label": "alice", "active": True, "confidence": 0.8,
                                   "start": 1.0})
        await rec.wait_for(lambda: len([t for t, _, _ in rec.messages if t.endswith("/state")]) >= 3)
        await sink.stop()
    configs = {t: json.loads(p) for t, p, _ in rec.messages if t.startswith("homeassistant/")}
    assert sorted(configs) == [
        "homeassistant/binary_sensor/stream_kitchen/sound_dog_barking/config",
        "homeassistant/binary_sensor/stream_kitchen/sound_smoke_alarm/config",
        "homeassistant/binary_sensor/stream_kitchen/speaking_alice/config",
        "homeassistant/event/stream_kitchen/speaker_turn/config",
        "homeassistant/sensor/stream_kitchen/speaker/config",
        "homeassistant/sensor/stream_kitchen/speakers/config",
        "homeassistant/sensor/stream_kitchen/tempo/config",
        "homeassistant/sensor/stream_kitchen/turn_latency/config",
    ]
    for topic, config in configs.items():
        missing = (COMMON | REQUIRED[topic.split("/")[1]]) - config.keys()
        assert not missing, f"{topic} lacks {missing}"
        assert config["device"]["identifiers"] == ["stream_kitchen"]
        assert config["availability_topic"] == "stream/kitchen/availability"
    assert len({c["unique_id"] for c in configs.values()}) == 8
    states = {t: p for t, p, _ in rec.messages}
    smoke = configs["homeassistant/binary_sensor/stream_kitchen/sound_smoke_alarm/config"]
    assert smoke["device_class"] == "sound"
    assert states[smoke["state_topic"]] == smoke["payload_on"].encode()
    tempo = configs["homeassistant/sensor/stream_kitchen/tempo/config"]
    assert (tempo["unit_of_measurement"], states[tempo["state_topic"]]) == ("BPM", b"96.0")
    assert states[configs["homeassistant/sensor/stream_kitchen/speaker/config"]["state_topic"]] == b"alice"
    turn = configs["homeassistant/event/stream_kitchen/speaker_turn/config"]
    assert turn["state_topic"] == "stream/kitchen/speaker"
    assert set(turn["event_types"]) == {"speaker.turn", "speaker.active"}
    # issue #21: a "speaking" binary_sensor per speaker label (announced when the label first appears), how many
    # talk now, the latest turn's latency as a diagnostic entity
    alice = configs["homeassistant/binary_sensor/stream_kitchen/speaking_alice/config"]
    assert states[alice["state_topic"]] == alice["payload_on"].encode()
    assert states[configs["homeassistant/sensor/stream_kitchen/speakers/config"]["state_topic"]] == b"1"
    assert configs["homeassistant/sensor/stream_kitchen/turn_latency/config"]["entity_category"] == "diagnostic"
    # Configs come before `online`, so HA never sees an available device without entities (a speaker's comes when
    # it first speaks, and `online` follows it again).
    order = [t for t, _, _ in rec.messages]
    assert max(order.index(t) for t in configs if "speaking_" not in t) < order.index("stream/kitchen/availability")
    assert order.index(alice_topic := "homeassistant/binary_sensor/stream_kitchen/speaking_alice/config") < \
        len(order) - 1 - order[::-1].index("stream/kitchen/availability"), alice_topic


async def test_removed_rule_is_deleted_and_birth_message_reannounces(broker: Broker, record) -> None:  # noqa: ANN001
    first = MqttSink(MqttConfig(url=broker.url, stream="kitchen", rules=("Dog barking", "Smoke alarm")))
    await first.start()
    await first.stop()
    smoke = "homeassistant/binary_sensor/stream_kitchen/sound_smoke_alarm/config"
    dog = "homeassistant/binary_sensor/stream_kitchen/sound_dog_barking/config"
    second = MqttSink(MqttConfig(url=broker.url, stream="kitchen", rules=("Dog barking",)))
    async with record(broker.port, "homeassistant/#") as rec:
        await rec.wait_for(lambda: len(rec.on(smoke)) == 1)  # retained from the first run
        await second.start()
        await rec.wait_for(lambda: rec.on(smoke)[-1:] == [b""] and len(rec.on(dog)) == 2)
        async with aiomqtt.Client("127.0.0.1", broker.port) as ha:
            await ha.publish("homeassistant/status", b"online")
            await rec.wait_for(lambda: len(rec.on(dog)) == 3)
        await second.stop()
    async with record(broker.port, "homeassistant/#") as late:  # what a new HA would discover now
        await late.wait_for(lambda: len(late.messages) >= 5)
    assert sorted(t for t, _, _ in late.messages) == [
        dog,
        "homeassistant/event/stream_kitchen/speaker_turn/config",
        "homeassistant/sensor/stream_kitchen/speaker/config",
        "homeassistant/sensor/stream_kitchen/speakers/config",
        "homeassistant/sensor/stream_kitchen/turn_latency/config",
    ]
