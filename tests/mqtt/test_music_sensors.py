"""Home Assistant sensors of the music graph: the music genre (with genres and moods as attributes) and the chord.

Guards: with `music = true` the sink announces both sensors with HA's required keys, a music.tags event sets the
genre state (retained) and its event topic carries the attributes, a chord.changed event sets the chord state.
"""

from __future__ import annotations

import json
import time

from stream.broker import Broker
from stream.sinks.mqtt import MqttConfig, MqttSink


async def test_music_genre_and_chord_sensors(broker: Broker, record) -> None:  # noqa: ANN001
    sink = MqttSink(MqttConfig(url=broker.url, stream="radio", speaker=False, music=True))
    now = time.time()
    base = {"stream": "radio", "t_audio": 5.0, "t_capture": now, "t_publish": now}
    tags = {"type": "music.tags", "duration": 5.0, "music": 0.8, "genre": "Rock music", "mood": "Happy music",
            "genres": [{"label": "Rock music", "score": 0.4}], "moods": [{"label": "Happy music", "score": 0.2}]}
    async with record(broker.port) as rec:
        await sink.start()
        await sink.publish(base | tags)
        await sink.publish(base | {"type": "chord.changed", "chord": "A:min", "previous": "C:maj", "confidence": 0.5})
        await rec.wait_for(lambda: len([t for t, _, _ in rec.messages if t.endswith("/state")]) >= 2)
        await sink.stop()
    configs = {t: json.loads(p) for t, p, _ in rec.messages if t.startswith("homeassistant/")}
    genre = configs["homeassistant/sensor/stream_radio/music_genre/config"]
    chord = configs["homeassistant/sensor/stream_radio/chord/config"]
    for config in (genre, chord):
        assert {"unique_id", "name", "device", "availability_topic", "state_topic"} <= config.keys()
    states = {t: p for t, p, _ in rec.messages}
    assert states[genre["state_topic"]] == b"Rock music"
    assert json.loads(states[genre["json_attributes_topic"]])["moods"][0]["label"] == "Happy music"
    assert states[chord["state_topic"]] == b"A:min"
