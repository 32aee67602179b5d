"""JSONL file sink: one event per line, flushed per event so a reader (or a test) sees it at once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from stream.sinks.base import Sink


@dataclass(frozen=True)
class JsonlConfig:
    path: str = "events.jsonl"  # appended to; parent folders are created


class JsonlSink(Sink):
    Config = JsonlConfig
    name = "jsonl"

    async def start(self) -> None:
        path = Path(self.config.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in stop()

    async def publish(self, event: dict[str, Any]) -> None:
        self._file.write(json.dumps(event, separators=(",", ":")) + "\n")
        self._file.flush()

    async def stop(self) -> None:
        self._file.close()


SINK = JsonlSink
