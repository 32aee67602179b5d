"""Home Assistant MQTT discovery: one device per stream, with entities for what the graph produces.

Home Assistant reads retained JSON configs on `<prefix>/<component>/<node_id>/<object_id>/config` (prefix
`homeassistant` by default); `node_id` is `stream_<stream slug>`. Entities:

- `binary_sensor` `sound_<rule>` per alert rule, `device_class: sound`, state `ON`/`OFF`;
- `sensor` `speaker`: the active speaker; `event` `speaker_turn`: speaker events as HA events;
- `sensor` `speakers`: how many speakers talk now; `binary_sensor` `speaking_<label>` (ON/OFF) per speaker label
  seen so far, announced when the label first appears;
- `sensor` `turn_latency` (diagnostic): the latest turn's capture-to-publish latency, ms;
- `sensor` `tempo` in BPM, `sensor` `music_genre` (top genre, or `none`; the genres and moods as attributes) and
  `sensor` `chord` (the current chord) in music graphs.

All share the device block (`identifiers`, name, model, versions) and the availability topic, so HA shows
them unavailable when the graph's last will fires. A config for an entity the graph no longer has (a rule was
removed or renamed) is deleted by publishing an empty retained payload on its topic.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stream import __version__
from stream.errors import ConfigError
from stream.sinks.mqtt_topics import slug

SPEAKER_EVENT_TYPES = ("speaker.turn", "speaker.active")


@dataclass(frozen=True)
class Entities:
    """What to announce for one stream."""

    stream: str
    rules: tuple[str, ...] = ()  # alert rule names (as in the rules TOML)
    speaker: bool = True  # active-speaker sensor + speaker-turn event entity
    tempo: bool = False  # tempo sensor
    music: bool = False  # music genre sensor (music.tags events) and chord sensor (chord.changed events)
    labels: tuple[str, ...] = ()  # speaker labels seen so far: a "speaking" binary_sensor each


def rule_names(path: str) -> tuple[str, ...]:
    """The rule names of an alert rules TOML (`[rules.<name>]` tables, configs/alerts.toml format)."""
    try:
        with open(Path(path), "rb") as f:
            rules = tomllib.load(f).get("rules", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"mqtt sink: cannot read rules_file {path!r} ({exc})") from None
    if not isinstance(rules, dict) or not rules:
        raise ConfigError(f"mqtt sink: rules_file {path!r} has no [rules.<name>] tables")
    return tuple(rules)


def node_id(stream: str) -> str:
    return f"stream_{slug(stream)}"


def configs(prefix: str, base: str, entities: Entities) -> dict[str, dict[str, Any]]:
    """Config topic -> discovery payload for every entity of `entities`."""
    node = node_id(entities.stream)
    root = f"{base}/{entities.stream}"
    common = {
        "availability_topic": f"{root}/availability",
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": {
            "identifiers": [node],
            "name": f"stream {entities.stream}",
            "manufacturer": "stream",
            "model": "real-time audio analysis",
            "sw_version": __version__,
        },
        "origin": {"name": "stream", "sw_version": __version__},
    }
    out: dict[str, dict[str, Any]] = {}

    def add(component: str, object_id: str, **fields: Any) -> None:
        out[f"{prefix}/{component}/{node}/{object_id}/config"] = {
            "unique_id": f"{node}_{object_id}",
            **fields,
            **common,
        }

    for rule in entities.rules:
        add(
            "binary_sensor",
            f"sound_{slug(rule)}",
            name=rule,
            device_class="sound",
            state_topic=f"{root}/sound/{slug(rule)}/state",
            payload_on="ON",
            payload_off="OFF",
        )
    if entities.speaker:
        add("sensor", "speaker", name="Active speaker", icon="mdi:account-voice", state_topic=f"{root}/speaker/state")
        add(
            "event",
            "speaker_turn",
            name="Speaker turn",
            state_topic=f"{root}/speaker",
            event_types=list(SPEAKER_EVENT_TYPES),
            # HA wants {"event_type": ...}; our payload names it `type`: keep every field as an attribute.
            value_template="{{ dict(value_json, event_type=value_json.type) | tojson }}",
        )
    if entities.speaker:
        add("sensor", "speakers", name="Speakers talking", icon="mdi:account-multiple",
            state_topic=f"{root}/speakers/state", state_class="measurement")
        add("sensor", "turn_latency", name="Turn latency", entity_category="diagnostic", icon="mdi:timer-outline",
            state_topic=f"{root}/latency/state", unit_of_measurement="ms", state_class="measurement")
        for label in entities.labels:
            add("binary_sensor", f"speaking_{slug(label)}", name=f"{label} speaking", device_class="sound",
                state_topic=f"{root}/speaker/{slug(label)}/state", payload_on="ON", payload_off="OFF")
    if entities.tempo:
        add(
            "sensor",
            "tempo",
            name="Tempo",
            icon="mdi:metronome",
            state_topic=f"{root}/tempo/state",
            unit_of_measurement="BPM",
            state_class="measurement",
        )
    if entities.music:
        add("sensor", "music_genre", name="Music genre", icon="mdi:music", state_topic=f"{root}/music/state",
            json_attributes_topic=f"{root}/music")
        add("sensor", "chord", name="Chord", icon="mdi:music-clef-treble", state_topic=f"{root}/chord/state")
    return out


def config_filter(prefix: str, stream: str) -> str:
    """Wildcard matching every discovery config this stream's device may have published."""
    return f"{prefix}/+/{node_id(stream)}/+/config"
