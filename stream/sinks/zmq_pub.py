"""ZeroMQ PUB sink: events as JSON for any number of subscribers (`stream listen`, dashboards, other services).

Topic scheme: each message is two frames, `[b"<type>/<stream>", json]`, e.g. `level/mic0`, `speaker.turn/mic0`.
Subscribe to `b""` for everything, `b"speaker."` for all speaker events, `b"level/mic0"` for one type of one
stream. The JSON is the event dict, valid against `stream/schemas/<type>.json`. A slow subscriber loses events
past the high-water mark (PUB never blocks the graph).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import zmq
import zmq.asyncio

from stream.sinks.base import Sink

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5560"


def event_topic(event: dict[str, Any]) -> bytes:
    return f"{event.get('type', '')}/{event.get('stream', '')}".encode()


@dataclass(frozen=True)
class ZmqPubConfig:
    endpoint: str = DEFAULT_ENDPOINT  # bind address; tcp://0.0.0.0:5560 serves other hosts in the clear:
    #                                   it needs [graph] plaintext_tcp = true
    hwm: int = 10_000  # events queued per subscriber before it loses some


class ZmqPubSink(Sink):
    Config = ZmqPubConfig
    name = "zmq_pub"

    async def start(self) -> None:
        self._ctx = zmq.asyncio.Context.instance()
        self._sock = self._ctx.socket(zmq.PUB)
        self._sock.setsockopt(zmq.SNDHWM, self.config.hwm)
        self._sock.setsockopt(zmq.LINGER, 1000)
        self._sock.bind(self.config.endpoint)

    async def publish(self, event: dict[str, Any]) -> None:
        await self._sock.send_multipart([event_topic(event), json.dumps(event).encode()])

    async def stop(self) -> None:
        self._sock.close()


SINK = ZmqPubSink
