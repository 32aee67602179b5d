"""Read events back from MQTT (`stream listen --mqtt URL`): the JSON events of `stream/<id>/...`, in arrival order.

Only event topics are yielded (and, when asked, availability changes: `stream listen --mqtt` shows a graph going
online or offline); retained states (`.../state`) and the sink's sync token are not events and are skipped, so the
output matches what `stream listen` prints from ZeroMQ.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt

from stream.broker import BrokerError
from stream.sinks.mqtt import MqttConfig, client, endpoint, refusal


def is_event_topic(topic: str) -> bool:
    """`stream/kitchen/speaker` yes; `.../speaker/state`, `.../availability`, `.../sync/<client>` no."""
    levels = topic.split("/")
    return not (levels[-1] in ("state", "availability") or (len(levels) > 3 and levels[2] == "sync"))


async def events(url: str, stream: str = "+", config: MqttConfig | None = None,
                 availability: bool = False) -> AsyncIterator[dict[str, Any]]:
    """Events of `stream` (`+` = every stream) from the broker at `url`, until the connection ends (BrokerError).

    With `availability`, each change of a graph's availability topic comes too, as
    `{"type": "availability", "stream": id, "state": "online" | "offline"}` (the retained one first).
    """
    config = config or MqttConfig(url=url)
    where = endpoint(config, url)
    topic = f"{config.base_topic}/{stream}/#"
    try:
        async with client(config, where, client_id=f"stream-listen-{uuid.uuid4().hex[:8]}") as mqtt:
            await mqtt.subscribe(topic, qos=1)
            async for message in mqtt.messages:
                topic = str(message.topic)
                if not isinstance(message.payload, bytes) or not message.payload:
                    continue
                if is_event_topic(topic):
                    yield json.loads(message.payload)
                elif availability and topic.endswith("/availability"):
                    yield {"type": "availability", "stream": topic.split("/")[-2], "state": message.payload.decode()}
    except aiomqtt.MqttError as exc:
        raise refusal(where, exc) or BrokerError(f"MQTT broker {where}: {exc}") from None
