"""Real mosquitto brokers on free localhost ports, and a subscriber that records what arrives."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import aiomqtt
import pytest

from stream.broker import Broker


@pytest.fixture
def broker() -> Iterator[Broker]:
    with Broker() as running:
        yield running


@dataclass
class Recorder:
    """Every message on the subscribed filter, in arrival order: (topic, payload, retained)."""

    messages: list[tuple[str, bytes, bool]] = field(default_factory=list)

    def on(self, topic: str) -> list[bytes]:
        return [payload for t, payload, _ in self.messages if t == topic]

    async def wait_for(self, predicate, timeout_s: float = 5.0) -> None:  # noqa: ANN001 - a () -> bool
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out after {timeout_s} s; got {len(self.messages)} messages")
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def recording(port: int, topic: str = "#") -> AsyncIterator[Recorder]:
    """Subscribe to `topic` on localhost:`port` (QoS 1) and record until the block exits."""
    recorder = Recorder()
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe(topic, qos=1)

        async def read() -> None:
            async for message in client.messages:
                recorder.messages.append((str(message.topic), bytes(message.payload), message.retain))

        task = asyncio.create_task(read())
        try:
            yield recorder
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@pytest.fixture
def record():  # noqa: ANN201 - the `recording` context manager, for tests
    return recording
