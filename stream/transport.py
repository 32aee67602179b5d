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

Bounded input: a SUB refuses frames over `max_message_bytes` (ZeroMQ `MAXMSGSIZE`, checked before the frame is
buffered). ZeroMQ answers such a frame by dropping the connection for good, so `Input` watches its socket's
events and reconnects when a disconnect is not followed by ZeroMQ's own retry (`Input.check`), counting it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from stream.curve import CurveKeys, RefusalCounter
from stream.errors import ConfigError
from stream.message import Message, encode

log = logging.getLogger(__name__)

READY = b"\x00ready/"
EOS = "eos"  # kind of the message a node publishes last: its upstreams are done and so is it
RECONNECT_IVL_MS, RECONNECT_IVL_MAX_MS = 20, 100
# A publisher silent this many heartbeats is given up (ZeroMQ's own heartbeats, answered by libzmq's I/O thread, so
# only a frozen process misses them). More than the supervisor's 10-beat hang limit: before, 3 beats, a node
# SIGSTOPped (or starved of CPU) for 1.5 s lost its downstream connections and the catch-up burst it published
# before they were back was dropped (tests/faults/test_stop.py: 64-89 of 100 events).
PEER_TIMEOUT_BEATS = 12
_ALIVE = zmq.EVENT_CONNECTED | zmq.EVENT_CONNECT_DELAYED | zmq.EVENT_CONNECT_RETRIED  # ZeroMQ is (re)connecting


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
        bind(self.sock, endpoint)
        self.expected = set(subscribers)
        self.joined: set[str] = set()
        self._watch = asyncio.ensure_future(self._watch_subscriptions())

    async def _watch_subscriptions(self) -> None:
        """Note expected subscribers joining; yields after each subscription, so a flood of them (any peer may
        subscribe) never starves the node's other work."""
        while True:
            event = await self.sock.recv()
            if event[:1] == b"\x01" and event[1:].startswith(READY):
                name = event[1 + len(READY):].decode(errors="replace")
                if name in self.joined:
                    log.info("subscriber %s rejoined", name)
                if name in self.expected:
                    self.joined.add(name)
            await asyncio.sleep(0)

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


def bind(sock: zmq.Socket, endpoint: str) -> None:
    """Bind, or ConfigError naming the endpoint (in use, malformed, no permission): restarting cannot fix it."""
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as exc:
        raise ConfigError(f"cannot bind {endpoint!r} ({exc}); give a free, well-formed endpoint "
                          "(ipc://PATH or tcp://HOST:PORT)") from None


def subscribe(
    ctx: zmq.asyncio.Context, endpoint: str, name: str, kinds: Iterable[str], hwm: int, heartbeat_ms: int,
    max_message_bytes: int = -1,
    curve: CurveKeys | None = None,
) -> zmq.asyncio.Socket:
    """A SUB connected to an upstream `endpoint`, subscribed to `kinds` (all when empty) and end-of-stream,
    then to its ready token. ZeroMQ heartbeats drop a dead TCP peer, reconnection is automatic and quick.
    With `curve`, a `tcp://` upstream is reached as a CURVE client that checks the publisher's key."""
    sock = ctx.socket(zmq.SUB)
    if curve is not None and endpoint.startswith("tcp://"):
        curve.connect_to(sock, endpoint)
    sock.setsockopt(zmq.RCVHWM, hwm)
    sock.setsockopt(zmq.MAXMSGSIZE, max_message_bytes)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)
    sock.setsockopt(zmq.HEARTBEAT_IVL, heartbeat_ms)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, PEER_TIMEOUT_BEATS * heartbeat_ms)
    kinds = list(kinds)
    for kind in kinds or [""]:
        sock.setsockopt(zmq.SUBSCRIBE, topic(kind) if kind else b"")
    if kinds:
        sock.setsockopt(zmq.SUBSCRIBE, topic(EOS))
    sock.setsockopt(zmq.SUBSCRIBE, READY + name.encode())
    try:
        sock.connect(endpoint)
    except zmq.ZMQError as exc:
        raise ConfigError(f"cannot connect to {endpoint!r} ({exc}); give ipc://PATH or tcp://HOST:PORT") from None
    return sock


class Input:
    """One upstream: its SUB socket plus the socket's event monitor, to undo ZeroMQ's permanent disconnect after
    an oversized frame. A disconnect that ZeroMQ does not follow with a reconnect attempt within `settle_s` was a
    protocol error (with our own peers: a frame over `max_message_bytes`); `check` then reconnects."""

    def __init__(self, sock: zmq.asyncio.Socket, endpoint: str) -> None:
        self.sock, self.endpoint = sock, endpoint
        self.monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED | _ALIVE)
        self.settle_s = 3 * RECONNECT_IVL_MAX_MS / 1000
        self._disconnected_at: float | None = None

    def read_events(self) -> None:
        """Take the monitor's pending events (call when its socket is readable)."""
        while True:
            try:
                frames = self.monitor.recv_multipart(zmq.NOBLOCK).result()
            except zmq.Again:
                return
            event = parse_monitor_message(frames)["event"]
            if event == zmq.EVENT_DISCONNECTED:
                self._disconnected_at = time.monotonic()
            elif event & _ALIVE:
                self._disconnected_at = None

    def check(self) -> bool:
        """Reconnect if ZeroMQ gave the connection up; True when it did (one refused oversized frame)."""
        if self._disconnected_at is None or time.monotonic() - self._disconnected_at < self.settle_s:
            return False
        self._disconnected_at = None
        with contextlib.suppress(zmq.ZMQError):  # ZeroMQ may have dropped the endpoint already
            self.sock.disconnect(self.endpoint)
        self.sock.connect(self.endpoint)
        return True

    def close(self) -> None:
        self.sock.disable_monitor()
        self.monitor.close()
        self.sock.close()
