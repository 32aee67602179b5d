"""Nodes for fault tests (imported by node processes as `tests.runtime.faulty:HangOnce`, `...:SlowStart`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from stream.message import Message
from stream.node import Node


@dataclass(frozen=True)
class HangConfig:
    flag: str  # file created when it hangs: the restarted process then works normally
    after: int = 25  # messages before hanging


class HangOnce(Node[HangConfig]):
    """Blocks its event loop (as a stuck native call would) once, after `after` messages."""

    Config = HangConfig

    async def setup(self) -> None:
        self.seen = 0

    async def process(self, msg: Message, port: str = "") -> list[Message]:
        self.seen += 1
        if self.seen == self.config.after and not Path(self.config.flag).exists():
            Path(self.config.flag).touch()
            time.sleep(60)
        return []


@dataclass(frozen=True)
class SlowConfig:
    seconds: float = 3.0  # s its setup takes (as loading a model does)


class SlowStart(Node[SlowConfig]):
    """Takes `seconds` to set up, then swallows what it gets."""

    Config = SlowConfig

    async def setup(self) -> None:
        time.sleep(self.config.seconds)

    async def process(self, msg: Message, port: str = "") -> list[Message]:
        return []


@dataclass(frozen=True)
class SlowStepsConfig:
    step_s: float = 0.2  # s each step blocks the event loop (as a model call does)
    long_s: float = 1.6  # s one later step blocks: over the graph's hang_s (1 s), under 10 steps
    every: int = 20  # messages per slow step (the others are quick: the node keeps up with real time)
    long_at: int = 8  # the slow step that is long
    flag: str = ""  # file created once the long step is over


class SlowSteps(Node[SlowStepsConfig]):
    """Every `every`th step blocks its loop for `step_s`, slow step `long_at` for `long_s`: slow work, not a
    hang."""

    Config = SlowStepsConfig

    async def setup(self) -> None:
        self.seen = 0

    async def process(self, msg: Message, port: str = "") -> list[Message]:
        self.seen += 1
        if self.seen % self.config.every:
            return []
        long = self.seen == self.config.every * self.config.long_at
        time.sleep(self.config.long_s if long else self.config.step_s)
        if long:
            Path(self.config.flag).touch()
        return []
