"""JSONL file sink: one event per line, written per event so a reader (or a test) sees it at once.

A full disk (or any write error) costs the events that did not fit, each counted as a sink error, never the file:
a line that did not fit whole is cut off again, so every line a reader finds is a whole event, and writing goes
on once there is space.
"""

from __future__ import annotations

import errno
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    async def publish(self, event: dict[str, Any]) -> None:
        line = (json.dumps(event, separators=(",", ":")) + "\n").encode()
        end = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            if os.write(self._fd, line) < len(line):
                raise OSError(errno.ENOSPC, f"no space left for a whole event in {self.config.path}")
        except OSError:
            os.ftruncate(self._fd, end)  # no half line for readers
            raise

    async def stop(self) -> None:
        os.close(self._fd)


SINK = JsonlSink
