"""Probe nodes for bench/runtime_latency.py: measure the runtime's own per-hop cost (no DSP, no model).

`Tick` emits 20 ms float32 blocks at real-time pace and stamps `meta["tx"]` = [send time]; each `Relay`
appends its receive time to `meta["rx"]` and its send time to `meta["tx"]`; `Record` appends its receive time
and writes every message's stamps to a JSONL file. Hop k latency = rx[k] - tx[k] (monotonic ns, one host).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np

from stream.message import Message
from stream.node import NoConfig, Node, Source


@dataclass(frozen=True)
class TickConfig:
    block_ms: float = 20.0  # ms per block
    rate: int = 16000  # Hz
    stream: str = "probe"


class Tick(Source[TickConfig]):
    Config = TickConfig

    async def produce(self) -> AsyncIterator[Message]:
        frames = round(self.config.rate * self.config.block_ms / 1000)
        period_ns = round(self.config.block_ms * 1e6)
        start = time.monotonic_ns()
        block = np.zeros(frames, np.float32)
        for i in range(1 << 62):
            due = start + (i + 1) * period_ns
            await asyncio.sleep(max(0.0, (due - time.monotonic_ns()) / 1e9))
            t_ns = start + i * period_ns
            yield Message.new(self.config.stream, "pcm", block, sr=self.config.rate, t_capture_ns=t_ns,
                              t_wall=time.time(), meta={"tx": [time.monotonic_ns()], "rx": []})


class Relay(Node[NoConfig]):
    async def process(self, msg: Message, port: str = "") -> list[Message]:
        rx = time.monotonic_ns()
        meta = msg.header.meta
        return [msg.derive("pcm", msg.data, meta={"rx": [*meta["rx"], rx], "tx": [*meta["tx"], time.monotonic_ns()]})]


@dataclass(frozen=True)
class RecordConfig:
    path: str = "probe.jsonl"


class Record(Node[RecordConfig]):
    Config = RecordConfig

    async def setup(self) -> None:
        self._file = open(self.config.path, "a")  # noqa: SIM115 - closed in close()

    async def process(self, msg: Message, port: str = "") -> list[Message]:
        rx = time.monotonic_ns()
        meta = msg.header.meta
        self._file.write(json.dumps({"seq": msg.header.seq, "tx": meta["tx"], "rx": [*meta["rx"], rx]}) + "\n")
        return []

    async def close(self) -> list[Message]:
        self._file.close()
        return []
