"""The sinks node: receives every node's events, stamps `t_publish`, fans out to the configured sinks.

It is one process of the graph (the supervisor adds it when the TOML has `[[sinks]]`), subscribed to kind
"event" of every node. It observes `stream_event_latency_seconds{node,event}` once per event: capture time of the
audio behind the event to its publication (`event` = the event's type, "other" for a type without a schema in
`stream/schemas/`, so made-up types cannot grow the metric without bound). A failing sink is counted
(`stream_sink_errors_total`), logged once, and the other sinks go on.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from stream import metrics
from stream.errors import ConfigError, MessageError
from stream.message import Message
from stream.node import Node, parse_config
from stream.schemas import known_types
from stream.sinks.base import Sink, resolve

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SinksConfig:
    sinks: tuple[dict, ...] = ()  # one table per sink: {kind = "jsonl", path = "..."}


def build_sinks(tables: tuple[dict, ...]) -> list[Sink]:
    """Sinks from `[[sinks]]` tables: `kind` picks the class, the other keys are its validated Config."""
    sinks = []
    for i, table in enumerate(tables):
        table = dict(table)
        kind = table.pop("kind", "")
        cls = resolve(kind)
        sinks.append(cls(parse_config(cls.Config, table, f"sinks[{i}] ({kind})")))
    return sinks


class SinksNode(Node[SinksConfig]):
    Config = SinksConfig
    accepts = ("event",)

    def __init__(self, config: SinksConfig | None = None, name: str | None = None) -> None:
        super().__init__(config, name)
        self.sinks = build_sinks(self.config.sinks)
        self._failed: set[str] = set()

    async def setup(self) -> None:
        """Start every sink; one that cannot start (port in use, broker refusing our password) stops the graph with
        its reason, instead of a graph running without it."""
        for sink in self.sinks:
            try:
                await sink.start()
            except Exception as exc:  # noqa: BLE001 - any start failure is the configuration's to fix
                raise ConfigError(f"sink {sink.name} cannot start ({type(exc).__name__}: {exc}); "
                                  "fix its [[sinks]] table") from exc

    async def process(self, msg: Message, port: str = "") -> list[Message]:
        event = publishable(msg, port)
        kind = event["type"] if isinstance(event["type"], str) and event["type"] in known_types() else "other"
        metrics.EVENT_LATENCY.labels(port, kind).observe(event["latency"])
        for sink in self.sinks:
            await self._guard(sink, sink.publish(event))
        return []

    async def close(self) -> list[Message]:
        for sink in self.sinks:
            await self._guard(sink, sink.stop())
        return []

    async def _guard(self, sink: Sink, call: Any) -> None:
        try:
            await call
        except Exception as exc:  # noqa: BLE001 - one sink's failure must not stop the others
            metrics.SINK_ERRORS.labels(sink.name).inc()
            if sink.name not in self._failed:
                self._failed.add(sink.name)
                log.warning("sink %s failed (%s: %s); counting its errors, other sinks go on",
                            sink.name, type(exc).__name__, exc)


def publishable(msg: Message, producer: str) -> dict[str, Any]:
    """The event dict of an event message, with the common fields filled in, `t_publish` = now (Unix s) and
    `latency` = now - the header's capture time (monotonic clock: immune to wall-clock steps; for a turn, the
    capture of its end, not of its start)."""
    h = msg.header
    if not _finite(h.meta):
        raise MessageError("event", f"event {h.meta.get('type')!r} from {producer} has a NaN or infinite value; "
                                    "JSON has none: rejected")
    event = dict(h.meta)
    event.setdefault("type", "event")
    event.setdefault("stream", h.stream)
    event.setdefault("t_capture", h.t_wall)
    event.setdefault("node", producer)
    event["t_publish"] = time.time()
    event["latency"] = (time.monotonic_ns() - h.t_capture_ns) / 1e9
    return event


def _finite(value: Any) -> bool:
    """Whether every number in a JSON-like value is finite (JSON cannot carry NaN or infinity)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_finite(v) for v in value)
    return True


NODE = SinksNode
