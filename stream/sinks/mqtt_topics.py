"""Where each event goes on MQTT, and which retained state topics it updates.

Topic scheme (`<base>` is `stream` unless configured, `<id>` the event's stream id):

| event type      | event topic (not retained)   | state topic (retained)          | state payload        |
|-----------------|------------------------------|---------------------------------|----------------------|
| `speaker.*`     | `<base>/<id>/speaker`        | `<base>/<id>/speaker/state`     | active speakers, or `none` |
|                 |                              | `<base>/<id>/speakers/state`    | how many talk now    |
|                 |                              | `<base>/<id>/speaker/<label>/state` | `ON` / `OFF`     |
|                 |                              | `<base>/<id>/latency/state`     | turn latency, ms     |
| `sound.start/stop` | `<base>/<id>/sound/<rule>` | `<base>/<id>/sound/<rule>/state`| `ON` / `OFF`         |
| `sound.tags`    | `<base>/<id>/tags`           | —                               |                      |
| `beat`          | `<base>/<id>/beat`           | `<base>/<id>/tempo/state`       | tempo, BPM (`%.1f`)  |
| `level`         | `<base>/<id>/level`          | —                               |                      |
| `music.tags`    | `<base>/<id>/music`          | `<base>/<id>/music/state`       | top genre, or `none` |
| `chord.changed` | `<base>/<id>/chord`          | `<base>/<id>/chord/state`       | chord (`A:min`, `N`) |
| any other `a.b` | `<base>/<id>/a`              | —                               |                      |
| availability    | `<base>/<id>/availability`   | retained, last will `offline`   | `online` / `offline` |
| (internal)      | `<base>/<id>/sync/<client>`  | the sink's own discovery sync token; ignore |   |

Payloads are the event dicts as JSON, exactly as on ZeroMQ (same schemas, `stream/schemas/`). `<rule>` is the
rule's slug (lower case, runs of anything but letters and digits become `_`), so it is one valid topic level.
"""

from __future__ import annotations

import json
import re
from typing import Any

from stream.errors import MessageError

NO_SPEAKER = "none"


def slug(name: str) -> str:
    """`"Dog barking"` -> `"dog_barking"`: a single MQTT topic level and a valid Home Assistant object id."""
    out = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not out:
        raise MessageError("bad name", f"{name!r} has no letters or digits to build an MQTT topic from")
    return out


def _field(event: dict[str, Any], key: str) -> Any:
    try:
        return event[key]
    except KeyError:
        raise MessageError("bad event", f"{event.get('type', '?')!r} event has no {key!r}: {event}") from None


def event_topic(base: str, event: dict[str, Any]) -> str:
    """The topic an event is published on (see the module's table)."""
    kind = str(_field(event, "type")).split(".")[0]
    root = f"{base}/{_field(event, 'stream')}"
    if event["type"] == "sound.tags":
        return f"{root}/tags"
    if kind == "sound":
        return f"{root}/sound/{slug(str(_field(event, 'rule')))}"
    return f"{root}/{kind}"


class States:
    """Derives retained state payloads from events; remembers who is speaking, per stream.

    `speaker.active` says one label started (`active: true`) or stopped; the state is every active label in the
    order they started, comma-separated, or `none`. `sound.start` turns its rule's state `ON`, `sound.stop` `OFF`;
    `beat` events carry `tempo` (BPM) once the tracker has one; `music.tags` the top genre, `chord.changed` the
    chord.
    """

    def __init__(self, base: str) -> None:
        self.base = base
        self._speaking: dict[str, list[str]] = {}

    def update(self, event: dict[str, Any]) -> dict[str, str]:
        """Retained state topic -> payload that this event sets (empty for events that carry no state)."""
        kind = str(_field(event, "type"))
        stream = str(_field(event, "stream"))
        root = f"{self.base}/{stream}"
        if kind == "speaker.active":
            speaking = self._speaking.setdefault(stream, [])
            label = str(_field(event, "label"))
            if label in speaking:
                speaking.remove(label)
            if _field(event, "active"):
                speaking.append(label)
            return {f"{root}/speaker/state": ", ".join(speaking) or NO_SPEAKER,
                    f"{root}/speakers/state": str(len(speaking)),
                    f"{root}/speaker/{slug(label)}/state": "ON" if _field(event, "active") else "OFF"}
        if kind == "speaker.turn" and isinstance(event.get("latency"), (int, float)):
            return {f"{root}/latency/state": f"{1000 * event['latency']:.0f}"}
        if kind in ("sound.start", "sound.stop"):
            state = "ON" if kind == "sound.start" else "OFF"
            return {f"{root}/sound/{slug(str(_field(event, 'rule')))}/state": state}
        if kind == "beat" and event.get("tempo") is not None:
            return {f"{root}/tempo/state": f"{float(event['tempo']):.1f}"}
        if kind == "music.tags":
            return {f"{root}/music/state": str(_field(event, "genre"))}
        if kind == "chord.changed":
            return {f"{root}/chord/state": str(_field(event, "chord"))}
        return {}


def idle(topic: str, value: str) -> bool:
    """Whether a retained speaker state says someone stopped: nobody talks, 0 talking, a speaker OFF (the sink
    holds these a moment, so a pause between two turns does not flap Home Assistant's sensors)."""
    return ((topic.endswith("/speaker/state") and value == NO_SPEAKER) or (topic.endswith("/speakers/state")
            and value == "0") or ("/speaker/" in topic and topic.endswith("/state") and value == "OFF"))


def encode(event: dict[str, Any]) -> bytes:
    """The JSON payload: compact, UTF-8, keys as the schemas name them."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
