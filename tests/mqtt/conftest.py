"""Real mosquitto brokers on free localhost ports, and a subscriber that records what arrives."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

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


def make_certificates(folder: Path) -> dict[str, Path]:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate (EC P-256, one day)."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    for name in ("ca", "server", "client", "stranger"):
        openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{name}.key")
    openssl("req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=stream test CA", "-days", "1", "-out", "ca.pem")
    openssl("req", "-x509", "-new", "-key", "stranger.key", "-subj", "/CN=stranger", "-days", "1",
            "-out", "stranger.pem")
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, extra in (("server", ["-extfile", "san.cnf"]), ("client", [])):
        openssl("req", "-new", "-key", f"{name}.key", "-subj", f"/CN={name}", "-out", f"{name}.csr")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "1", "-out", f"{name}.pem", *extra)
    return {name: folder / name for name in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key",
                                             "stranger.pem")}


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_certificates(tmp_path_factory.mktemp("certs"))
