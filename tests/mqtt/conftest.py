"""Real mosquitto brokers on free localhost ports, and a subscriber that records what arrives."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

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
    """A throwaway CA, a server certificate for 127.0.0.1, a client certificate and an unrelated self-signed one."""
    now = datetime.datetime.now(datetime.timezone.utc)

    def issue(name: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name | None = None,
              issuer_key: ec.EllipticCurvePrivateKey | None = None, ip: str | None = None) -> x509.Certificate:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer or subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True))
        if ip:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
                                            critical=False)
        return builder.sign(issuer_key or key, hashes.SHA256())

    def write(name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        (folder / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (folder / f"{name}.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

    keys = {name: ec.generate_private_key(ec.SECP256R1()) for name in ("ca", "server", "client", "stranger")}
    ca = issue("stream test CA", keys["ca"])
    write("ca", ca, keys["ca"])
    write("server", issue("server", keys["server"], ca.subject, keys["ca"], ip="127.0.0.1"), keys["server"])
    write("client", issue("client", keys["client"], ca.subject, keys["ca"]), keys["client"])
    write("stranger", issue("stranger", keys["stranger"]), keys["stranger"])
    return {name: folder / name for name in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key",
                                             "stranger.pem")}


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_certificates(tmp_path_factory.mktemp("certs"))
