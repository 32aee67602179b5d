"""ZeroMQ plumbing between nodes: one XPUB output per node, one SUB per input, a ready handshake.

Why PUB/SUB (not PUSH/PULL): one output feeds many consumers (pcm goes to features, sed and music) and a slow or
crashed consumer must never stall capture; real-time audio prefers a counted drop to a blocked microphone. PUB
drops silently at its high-water mark, so every message carries a per-(stream, sender) `seq` and the receiver
counts the gap (`stream_messages_total{result="dropped"}`): drops are visible, never silent.

Frames on the wire: `[topic, header, array]` with topic `<kind>/<stream>`, so a node subscribes to the kinds it
accepts (the sinks node only receives events) and ZeroMQ filters at the sender.

Ready handshake (no frame lost to slow joiners): a subscriber, after its data subscriptions, subscribes to the
token `\\x00ready/<its name>`. The publisher is an XPUB with verbose subscriptions, so it sees every token and
`wait_ready` returns once all expected subscribers have joined. Subscriptions on one pipe are applied in order,
so the token arriving means the data subscriptions are in place. A restarted subscriber reconnects and resends
its subscriptions by itself (ZeroMQ), so nothing has to be re-wired.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import zmq
import zmq.asyncio

from stream.curve import CurveKeys, RefusalCounter
from stream.message import Message, encode

log = logging.getLogger(__name__)

READY = b"\x00ready/"
EOS = "eos"  # kind of the message a node publishes last: its upstreams are done and so is it


def topic(kind: str, stream: str = "") -> bytes:
    return f"{kind}/{stream}".encode()


class Publisher:
    """A node's output: bound XPUB that knows which subscribers have joined."""

    def __init__(self, ctx: zmq.asyncio.Context, endpoint: str, subscribers: Iterable[str], hwm: int,
                 curve: CurveKeys | None = None, name: str = "") -> None:
        self.sock = ctx.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.sock.setsockopt(zmq.SNDHWM, hwm)
        self.sock.setsockopt(zmq.LINGER, 2000)
        self.refusals: RefusalCounter | None = None
        if curve is not None and endpoint.startswith("tcp://"):
            curve.serve(self.sock)
            self.refusals = RefusalCounter(self.sock, name)
        self.sock.bind(endpoint)
        self.expected = set(subscribers)
        self.joined: set[str] = set()
        self._watch = asyncio.ensure_future(self._watch_subscriptions())

    async def _watch_subscriptions(self) -> None:
        while True:
            event = await self.sock.recv()
            if event[:1] == b"\x01" and event[1:].startswith(READY):
                name = event[1 + len(READY):].decode(errors="replace")
                if name in self.joined:
                    log.info("subscriber %s rejoined", name)
                self.joined.add(name)

    async def wait_ready(self, timeout_s: float) -> bool:
        """Wait until every expected subscriber has joined; False (and a warning) after `timeout_s`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not self.expected <= self.joined:
            if loop.time() > deadline:
                log.warning("subscribers %s did not join within %.1f s; publishing anyway",
                            sorted(self.expected - self.joined), timeout_s)
                return False
            await asyncio.sleep(0.005)
        return True

    async def send(self, msg: Message) -> None:
        await self.sock.send_multipart([topic(msg.header.kind, msg.header.stream), *encode(msg)], copy=False)

    def close(self) -> None:
        self._watch.cancel()
        if self.refusals is not None:
            self.refusals.close()
        self.sock.close()


def subscribe(
    ctx: zmq.asyncio.Context, endpoint: str, name: str, kinds: Iterable[str], hwm: int, heartbeat_ms: int,
    curve: CurveKeys | None = None,
) -> zmq.asyncio.Socket:
    """A SUB connected to an upstream `endpoint`, subscribed to `kinds` (all when empty) and end-of-stream,
    then to its ready token. ZeroMQ heartbeats drop a dead TCP peer, reconnection is automatic and quick.
    With `curve`, a `tcp://` upstream is reached as a CURVE client that checks the publisher's key."""
    sock = ctx.socket(zmq.SUB)
    if curve is not None and endpoint.startswith("tcp://"):
        curve.connect_to(sock, endpoint)
    sock.setsockopt(zmq.RCVHWM, hwm)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RECONNECT_IVL, 20)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 100)
    sock.setsockopt(zmq.HEARTBEAT_IVL, heartbeat_ms)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3 * heartbeat_ms)
    kinds = list(kinds)
    for kind in kinds or [""]:
        sock.setsockopt(zmq.SUBSCRIBE, topic(kind) if kind else b"")
    if kinds:
        sock.setsockopt(zmq.SUBSCRIBE, topic(EOS))
    sock.setsockopt(zmq.SUBSCRIBE, READY + name.encode())
    sock.connect(endpoint)
    return sock
