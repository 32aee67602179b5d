"""ZeroMQ plumbing between nodes: one XPUB output per node, one SUB per input, a ready handshake.

Why PUB/SUB (not PUSH/PULL): one output feeds many consumers (pcm goes to features, sed and music) and a slow or
crashed consumer must never stall capture; real-time audio prefers a counted drop to a blocked microphone. PUB
drops silently at its high-water mark, so every message carries a per-(stream, sender) `seq` and the receiver
counts the gap (`stream_messages_total{result="dropped"}`): drops are visible, never silent.

Frames on the wire: `[topic, header, array]` with topic `<kind>/<stream>`, so a node subscribes to the kinds it
accepts (the sinks node only receives events) and ZeroMQ filters at the sender.

Ready handshake (no frame lost to slow joiners): a subscriber, after its data subscriptions, subscribes to the
token `\\x00ready/<its name>`. The publisher is an XPUB with verbose subscriptions, so it sees every token and
`wait_ready` returns once all expected subscribers have joined. On (re)connect a SUB sends all its subscriptions
in one burst, in the byte order of its subscription trie (so the `\\x00` token comes first, not last), and the
XPUB applies every subscription waiting on the pipe before it hands any to the application: by the time the
token is read, the data subscriptions sent with it are in place (tested: no frame lost to a slow joiner). A
restarted subscriber reconnects and resends its subscriptions by itself (ZeroMQ), so nothing has to be re-wired.

Replay (nothing lost to a restart): every Publisher keeps a ring of what it sent in its last `replay_s` seconds
(at most `replay_bytes`, oldest evicted first). A node restarted from its checkpoint subscribes, after its data
subscriptions, to `\\x00replay/<its name>/` (the replay topic, which only it subscribes to) and to a request token
`\\xffreplay/<its name>/<msgpack {"after": {stream: [epoch, seq]}, "kinds": [...]}>`: the last message of each
stream its checkpointed state had processed. The XPUB sees the request as a subscription and answers on the same
pipe: the ring's frames after those positions (all of a stream of another epoch or not named), each under
`\\x00replay/<name>/` + its own topic, then the bare topic `\\x00replay/<name>/` as the end mark. The subscriber
holds live frames meanwhile and takes them after the replayed ones, skipping those the replay gave (dedupe by seq
per sender and stream), then unsubscribes both tokens (ZeroMQ would resend them to a restarted upstream). A
subscriber of every topic (empty filter) ignores other nodes' replay topics. What the ring no longer holds is
counted as dropped by sequence number, as before. Why `\\xff`: a SUB sends its subscriptions on (re)connect in
the byte order of its subscription trie, not in the order they were made (the ready token, `\\x00...`, comes
first), so the request sorts after the replay topic and the data subscriptions, and the publisher sees it with
those in place.

Bounded input: a SUB refuses frames over `max_message_bytes` (ZeroMQ `MAXMSGSIZE`, checked before the frame is
buffered). ZeroMQ answers such a frame by dropping the connection for good, so `Input` watches its socket's
events and reconnects when a disconnect is not followed by ZeroMQ's own retry (`Input.check`), counting it; it
also restarts a connection attempt that stays silent for 10 s (neither connected nor retried).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgpack

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from stream.curve import CurveKeys, RefusalCounter
from stream.errors import ConfigError
from stream.message import Message, encode

log = logging.getLogger(__name__)

READY = b"\x00ready/"
REPLAY = b"\x00replay/"  # + `<name>/`: the topic of frames replayed to that subscriber
ASK = b"\xffreplay/"  # + `<name>/<request>`: a replay request (sorts after every data subscription, see below)
MAX_REQUEST_BYTES = 64 * 1024  # a replay request names at most max_streams positions: far less than this
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


def replay_prefix(name: str) -> bytes:
    """The topic prefix of the frames replayed to subscriber `name` (its end mark is the bare prefix)."""
    return REPLAY + name.encode() + b"/"


@dataclass
class Sent:
    """One message in a Publisher's replay ring."""

    t: float  # monotonic s when sent
    kind: str
    stream: str
    seq: int
    frames: list[bytes]  # [topic, header, array]
    size: int = field(init=False)

    def __post_init__(self) -> None:
        self.size = sum(len(f) for f in self.frames)


class Publisher:
    """A node's output: bound XPUB that knows which subscribers have joined and replays its recent frames to a
    restarted one that asks (module docstring)."""

    def __init__(self, ctx: zmq.asyncio.Context, endpoint: str, subscribers: Iterable[str], hwm: int,
                 curve: CurveKeys | None = None, name: str = "", epoch: int = 0, replay_s: float = 0.0,
                 replay_bytes: int = 0) -> None:
        self.sock = ctx.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.sock.setsockopt(zmq.SNDHWM, hwm)
        self.sock.setsockopt(zmq.LINGER, 2000)
        self.refusals: RefusalCounter | None = None
        if curve is not None and endpoint.startswith("tcp://"):
            curve.serve(self.sock)
            self.refusals = RefusalCounter(self.sock, name)
        bind(self.sock, endpoint)
        self.name, self.epoch = name, epoch
        self.replay_s, self.replay_bytes = replay_s, replay_bytes
        self.ring: deque[Sent] = deque()
        self.ring_bytes = 0
        self.expected = set(subscribers)
        self.joined: set[str] = set()
        self._logged = False
        self._watch = asyncio.ensure_future(self._watch_subscriptions())

    async def _watch_subscriptions(self) -> None:
        """Note expected subscribers joining and answer replay requests; yields after each subscription, so a
        flood of them (any peer may subscribe) never starves the node's other work."""
        while True:
            event = await self.sock.recv()
            if event[:1] == b"\x01" and event[1:].startswith(READY):
                name = event[1 + len(READY):].decode(errors="replace")
                if name in self.joined:
                    log.info("subscriber %s rejoined", name)
                if name in self.expected:
                    self.joined.add(name)
            elif event[:1] == b"\x01" and event[1:].startswith(ASK):
                await self._replay(event[1 + len(ASK):])
            await asyncio.sleep(0)

    async def _replay(self, token: bytes) -> None:
        """Answer `<name>/<request>`; a request that does not parse is answered with the end mark alone, and
        logged once."""
        name, _, raw = token.partition(b"/")
        request = _request(raw)
        if request is None and not self._logged:
            self._logged = True
            log.warning("%s: malformed replay request from %r; answered with nothing", self.name, name[:64])
        prefix = REPLAY + name + b"/"
        sent = 0
        if request is not None:
            after, kinds = request
            for entry in list(self.ring):
                if kinds and entry.kind not in kinds:
                    continue
                epoch, seq = after.get(entry.stream, (-1, -1))
                if epoch == self.epoch and entry.seq <= seq:
                    continue
                await self.sock.send_multipart([prefix + entry.frames[0], *entry.frames[1:]])
                sent += 1
        await self.sock.send(prefix)
        log.info("%s: replayed %d message(s) to %s", self.name, sent, name.decode(errors="replace"))

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
        """Publish `msg` and keep it in the replay ring (unless replay is off)."""
        h = msg.header
        header, data = encode(msg)
        frames = [topic(h.kind, h.stream), header, data]
        if self.replay_s > 0:
            frames[2] = bytes(data)  # the ring's own copy: a node may reuse its array
            self._keep(Sent(time.monotonic(), h.kind, h.stream, h.seq, frames))
        await self.sock.send_multipart(frames, copy=False)

    def _keep(self, entry: Sent) -> None:
        self.ring.append(entry)
        self.ring_bytes += entry.size
        while self.ring and (self.ring_bytes > self.replay_bytes or entry.t - self.ring[0].t > self.replay_s):
            self.ring_bytes -= self.ring.popleft().size

    def close(self) -> None:
        self._watch.cancel()
        if self.refusals is not None:
            self.refusals.close()
        self.sock.close()


def _request(raw: bytes) -> tuple[dict[str, tuple[int, int]], set[str]] | None:
    """({stream: (epoch, last seq)}, kinds) of a replay request, or None when it is not one."""
    if len(raw) > MAX_REQUEST_BYTES:
        return None
    try:
        request = msgpack.unpackb(raw, raw=False)
    except (ValueError, msgpack.UnpackException, TypeError):
        return None
    if not isinstance(request, dict) or not isinstance(request.get("after"), dict) \
            or not isinstance(request.get("kinds"), list):
        return None
    after: dict[str, tuple[int, int]] = {}
    for stream, position in request["after"].items():
        if not (isinstance(stream, str) and isinstance(position, list) and len(position) == 2
                and all(isinstance(n, int) and not isinstance(n, bool) for n in position)):
            return None
        after[stream] = (position[0], position[1])
    if not all(isinstance(kind, str) for kind in request["kinds"]):
        return None
    return after, set(request["kinds"])


def replay_request(after: dict[str, list[int]], kinds: Iterable[str]) -> bytes:
    """The payload of a replay request: replay what follows `after` ({stream: [epoch, last seq]}) of `kinds`
    (all when empty)."""
    return msgpack.packb({"after": after, "kinds": list(kinds)}, use_bin_type=True)


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
    replay: bytes = b"",
) -> zmq.asyncio.Socket:
    """A SUB connected to an upstream `endpoint`, subscribed to `kinds` (all when empty) and end-of-stream,
    then (with a `replay` request, see `replay_request`) to its replay topic and request, then to its ready token.
    ZeroMQ heartbeats drop a dead TCP peer, reconnection is automatic and quick. With `curve`, a `tcp://`
    upstream is reached as a CURVE client that checks the publisher's key."""
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
    if replay:
        sock.setsockopt(zmq.SUBSCRIBE, replay_prefix(name))
        sock.setsockopt(zmq.SUBSCRIBE, ASK + name.encode() + b"/" + replay)
    sock.setsockopt(zmq.SUBSCRIBE, READY + name.encode())
    try:
        sock.connect(endpoint)
    except zmq.ZMQError as exc:
        raise ConfigError(f"cannot connect to {endpoint!r} ({exc}); give ipc://PATH or tcp://HOST:PORT") from None
    return sock


class Input:
    """One upstream: its SUB socket plus the socket's event monitor, to undo ZeroMQ's permanent disconnect after
    an oversized frame. A disconnect that ZeroMQ does not follow with a reconnect attempt within `settle_s` was a
    protocol error (with our own peers: a frame over `max_message_bytes`); `check` then reconnects. So does an
    attempt that neither connects nor retries for `stall_s` (ZeroMQ retries every 0.1 s at most, so only a stuck
    attempt is that quiet): the input never stays down while its upstream is up."""

    def __init__(self, sock: zmq.asyncio.Socket, endpoint: str, name: str = "", replay: bytes = b"",
                 replay_wait_s: float = 5.0) -> None:
        self.sock, self.endpoint = sock, endpoint
        # the same socket without asyncio's wrapping, for draining what has arrived (`recv`): a non-blocking
        # receive through zmq.asyncio builds and settles a Future per frame (~10 % of a trivial node's CPU measured)
        self.raw = zmq.Socket.shadow(sock.underlying)
        self.monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED | _ALIVE)
        self.settle_s = 3 * RECONNECT_IVL_MAX_MS / 1000
        self.stall_s = 100 * RECONNECT_IVL_MAX_MS / 1000
        self._last: tuple[int, float] | None = None  # the monitor's last event and when it came; None while up
        self.prefix = replay_prefix(name)
        self.ask = ASK + name.encode() + b"/"
        self.request = replay  # b"" = no replay asked (or it ended)
        self.replay_until = time.monotonic() + replay_wait_s  # then live frames are taken without it (logged)
        self.held: list[Any] = []  # live frames that came before the replay's end mark

    def recv(self) -> list[memoryview] | None:
        """The next multipart frame that has arrived, without waiting; None when there is none."""
        try:
            return [f.buffer for f in self.raw.recv_multipart(zmq.NOBLOCK, copy=False)]
        except zmq.Again:
            return None

    def end_replay(self) -> list[Any]:
        """Stop waiting for the replay: unsubscribe its topic and request; the live frames held meanwhile."""
        self.sock.setsockopt(zmq.UNSUBSCRIBE, self.ask + self.request)
        self.sock.setsockopt(zmq.UNSUBSCRIBE, self.prefix)
        self.request = b""
        held, self.held = self.held, []
        return held

    def read_events(self) -> None:
        """Take the monitor's pending events (call when its socket is readable)."""
        while True:
            try:
                frames = self.monitor.recv_multipart(zmq.NOBLOCK).result()
            except zmq.Again:
                return
            event = parse_monitor_message(frames)["event"]
            log.info("%s: %s", self.endpoint, zmq.Event(event).name)
            self._last = None if event == zmq.EVENT_CONNECTED else (event, time.monotonic())

    def check(self) -> bool:
        """Reconnect if ZeroMQ gave the connection up or an attempt stalled (class docstring); True only for the
        former: one refused oversized frame, which the runner counts."""
        if self._last is None:
            return False
        event, at = self._last
        if time.monotonic() - at < (self.settle_s if event == zmq.EVENT_DISCONNECTED else self.stall_s):
            return False
        if event != zmq.EVENT_DISCONNECTED:  # an oversized frame is logged by the runner, which counts it
            log.warning("%s: no connection after %.0f s (last: %s); reconnecting", self.endpoint, self.stall_s,
                        zmq.Event(event).name)
        self._last = (zmq.EVENT_CONNECT_RETRIED, time.monotonic())
        with contextlib.suppress(zmq.ZMQError):  # ZeroMQ may have dropped the endpoint already
            self.sock.disconnect(self.endpoint)
        self.sock.connect(self.endpoint)
        return event == zmq.EVENT_DISCONNECTED

    def close(self) -> None:
        self.sock.disable_monitor()
        self.monitor.close()
        self.sock.close()
