"""The sink interface: where events leave the graph (ZeroMQ PUB, JSONL, console, MQTT, ...).

A sink is a class with a frozen-dataclass `Config` (validated from its `[[sinks]]` table like a node's) and three
coroutines. `publish` must not wait long on I/O it does not control (buffer instead); an exception from it is
counted in `stream_sink_errors_total{sink}` and never stops the other sinks. A sink kind "jsonl" resolves to
`stream.sinks.jsonl:SINK`, a dotted "pkg.module:Class" to anything else.
"""

from __future__ import annotations

import importlib
from typing import Any, ClassVar

from stream.errors import ConfigError


class Sink:
    """Base of every sink: `Sink(config)`, then `await start()`, `await publish(event)` per event, `await stop()`."""

    Config: ClassVar[type]
    name: ClassVar[str] = "sink"

    def __init__(self, config: Any) -> None:
        self.config = config

    async def start(self) -> None:
        """Open files, bind sockets, connect."""

    async def publish(self, event: dict[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement publish()")

    async def stop(self) -> None:
        """Flush and close what `start` opened."""


def resolve(kind: str) -> type[Sink]:
    """"jsonl" -> stream.sinks.jsonl:SINK; "pkg.mod:Class" -> that class."""
    module, _, attr = kind.partition(":") if ":" in kind else (f"stream.sinks.{kind}", ":", "SINK")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"sink kind {kind!r} not found ({exc}); use zmq_pub, jsonl, console, mqtt or 'package.module:Class'"
        ) from exc
