"""Console sink: one human-readable line per event on stdout (also what `stream listen` prints)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from stream.sinks.base import Sink

_COMMON = ("type", "stream", "t_audio", "t_capture", "t_publish", "node", "latency")


def format_event(event: dict[str, Any]) -> str:
    """`  12.340 s  mic0  level  rms_dbfs=-20.1 peak_dbfs=-3.2  (latency 45 ms)`."""
    latency = f"  (latency {1000 * event['latency']:.0f} ms)" if isinstance(event.get("latency"), float) else ""
    fields = " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in event.items() if k not in _COMMON
    )
    head = f"{event.get('t_audio', 0.0):9.3f} s  {event.get('stream', '?')}  {event.get('type', '?')}"
    return f"{head}  {fields}{latency}"


@dataclass(frozen=True)
class ConsoleConfig:
    every: int = 1  # print one event in `every` (level events come 50 per second)
    types: tuple[str, ...] = ()  # event types to print, e.g. ["speaker.turn", "beat"]; () = all


class ConsoleSink(Sink):
    Config = ConsoleConfig
    name = "console"

    async def start(self) -> None:
        self._count = 0

    async def publish(self, event: dict[str, Any]) -> None:
        if self.config.types and event.get("type") not in self.config.types:
            return
        self._count += 1
        if self._count % self.config.every == 0:
            print(format_event(event), file=sys.stdout, flush=True)


SINK = ConsoleSink
