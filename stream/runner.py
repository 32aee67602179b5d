"""The process around one node: sockets, receive loop, validation and counting, heartbeats, checkpoints, stop.

The supervisor starts `python -m stream.runner '<NodeSpec as JSON>'` per node. Order of a start:
restore checkpoint -> `setup()` -> bind output and wait until downstream subscribers joined -> subscribe to
upstreams -> heartbeat "ready" -> run. Every received message is decoded and checked (malformed ones are
counted and logged once per reason, never fatal), sequence gaps are counted as dropped, then `process` runs.

Stopping: SIGTERM/SIGINT makes a source stop producing and any node drain what it has already received; when
all upstreams have sent end-of-stream (or on a stop) the node calls `close()`, publishes the result and its own
end-of-stream, checkpoints and exits 0. A StreamError (the user must fix something) exits `EXIT_FATAL` and the
supervisor stops the graph; any other crash exits non-zero and the supervisor restarts the node.

Nothing lost to a restart, nothing told twice: the checkpoint (every `checkpoint_s`, never in the middle of a
message) holds the node state, the last seq it processed per (sender, stream), its output seq per stream and its
epoch. A restarted node asks each upstream to replay what followed those positions (`stream.transport`: every
publisher keeps its last `replay_s` of frames), so it processes the messages of its outage, and those it had
processed after its checkpoint, before live ones, each once. Re-made outputs carry the seq they had the first
time (same epoch, counters restored), so downstream drops them as duplicates (`result="duplicate"`). A node that
starts without a usable checkpoint draws a new epoch: its seq starting over is a restart, not duplicates. What an
upstream's ring no longer holds is counted as dropped by sequence number. A source numbers its messages by
position when it can (`Source.position`: a file resumes or skips by its checkpoint); a source without state (a
device) keeps no epoch across a restart (its audio after one is new).

Bounded inputs: frames over `max_message_bytes` are refused by ZeroMQ before they are buffered ("oversize"), and
a node keeps state for at most `max_streams` stream ids (messages of more are "rejected"); both are counted in
`stream_messages_total{result}`. End-of-stream is a runtime message (stream "-", no data) that names the last seq
its sender published per kind and stream; it ends an input only when it accounts for everything received from
that input, so a stray or forged one (counted as malformed) cannot stop a node.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import setproctitle
import zmq
import zmq.asyncio

from stream import metrics
from stream.curve import CurveKeys, ZapHandler
from stream.errors import MessageError, StreamError
from stream.message import MAX_SEQ, Message, Order, SeqTracker, decode
from stream.node import Node, Source, resolve
from stream.pulse import Pulse
from stream.transport import EOS, REPLAY, Input, Publisher, replay_request, subscribe

log = logging.getLogger(__name__)

RTF_SPAN_S = 1.0  # s of audio per stream_realtime_factor reading
EXIT_FATAL = 3  # a StreamError (bad config, missing model or file): restarting cannot fix it
RESULTS = ("ok", "malformed", "dropped", "gap", "out_of_order", "rejected", "oversize", "duplicate")
REPLAY_WAIT_S = 5.0  # s a restarted node waits for an upstream's replay before it takes live frames without it


@dataclass(frozen=True)
class NodeSpec:
    """Everything a node process needs; built by the supervisor from the graph TOML."""

    name: str
    kind: str
    config: dict[str, Any]
    endpoint: str  # where this node's output binds
    inputs: dict[str, str] = field(default_factory=dict)  # upstream name -> its endpoint
    subscribers: list[str] = field(default_factory=list)  # downstream names to wait for before running
    control: str = ""  # supervisor's heartbeat endpoint ("" when run alone)
    state_path: str = ""  # checkpoint file ("" for none)
    hwm: int = 1000  # messages queued per socket before ZeroMQ drops (counted as gaps downstream)
    max_queue: int = 64  # messages taken off the sockets ahead of processing (stream_queue_depth)
    heartbeat_s: float = 0.5
    checkpoint_s: float = 1.0
    ready_timeout_s: float = 30.0
    max_streams: int = 64  # stream ids one node keeps state for; messages of further ones are rejected (counted)
    max_message_bytes: int = 16 * 2**20  # frames over this are refused at the socket (counted as oversize)
    curve: dict[str, Any] | None = None  # CurveKeys.to_dict() when the graph has a [curve] table
    replay_s: float = 10.0  # s of sent frames kept to replay to a restarted subscriber (0: none)
    replay_bytes: int = 32 * 2**20  # bound of that ring in bytes

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> NodeSpec:
        return cls(**json.loads(text))


def _pack(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": [obj.dtype.str, list(obj.shape), obj.tobytes()]}
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot checkpoint {type(obj).__name__}")


def _unpack(obj: dict[str, Any]) -> Any:
    if "__ndarray__" in obj:
        dtype, shape, raw = obj["__ndarray__"]
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    return obj


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Atomic write: a crash mid-write leaves the previous checkpoint intact."""
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgpack.packb(state, default=_pack, use_bin_type=True))
    tmp.replace(path)


def load_state(path: Path) -> dict[str, Any]:
    return msgpack.unpackb(path.read_bytes(), object_hook=_unpack, raw=False, strict_map_key=False)


class Runner:
    """Runs one node over ZeroMQ until end of stream or a stop signal."""

    def __init__(self, spec: NodeSpec, node: Node[Any], ctx: zmq.asyncio.Context) -> None:
        self.spec, self.node, self.ctx = spec, node, ctx
        self.tracker = SeqTracker()  # what was received (gaps, duplicates)
        self.done = SeqTracker()  # what was processed: the checkpoint's positions, where a replay starts
        self.epoch = random.randint(1, MAX_SEQ)  # kept from the checkpoint when restored
        self.restored = False
        self._step = asyncio.Lock()  # a checkpoint is taken between messages, never in the middle of one
        self.out_seq: dict[str, int] = {}
        self.last_sent: dict[str, dict[str, int]] = {}  # kind -> stream -> last seq published (told at the end)
        self.queue: deque[tuple[str, Message]] = deque()
        self.ended: set[str] = set()
        self.stopping = asyncio.Event()
        self.state = "starting"
        self._logged: set[str] = set()
        self._messages = {r: metrics.MESSAGES.labels(spec.name, r) for r in RESULTS}
        self._process_seconds = metrics.PROCESS_SECONDS.labels(spec.name)
        self._process_cpu = metrics.PROCESS_CPU.labels(spec.name)
        self._rtf = metrics.REALTIME_FACTOR.labels(spec.name)
        self._busy_s = self._audio_s = 0.0  # process() time and audio received since the gauge was last set
        self._depth = metrics.QUEUE_DEPTH.labels(spec.name)
        self.pub: Publisher | None = None
        self.inputs: dict[str, Input] = {}
        self.pulse: Pulse | None = None  # heartbeats, from `run` on when the graph has a supervisor

    # -- lifecycle ---------------------------------------------------------------------------------------------
    async def run(self) -> None:
        state_path = Path(self.spec.state_path) if self.spec.state_path else None
        if state_path and state_path.is_file():
            self._restore(state_path)
        await self.node.setup()
        curve = CurveKeys.from_dict(self.spec.curve) if self.spec.curve else None
        zap = ZapHandler(self.ctx, curve.authorized) if curve else None
        self.pub = Publisher(self.ctx, self.spec.endpoint, self.spec.subscribers, self.spec.hwm, curve, self.spec.name,
                             self.epoch, self.spec.replay_s, self.spec.replay_bytes)
        await self.pub.wait_ready(self.spec.ready_timeout_s)
        kinds = [*self.node.accepts, EOS] if self.node.accepts else []
        for upstream, endpoint in self.spec.inputs.items():
            replay = replay_request(self.done.after(upstream), kinds) if self.restored else b""
            sock = subscribe(self.ctx, endpoint, self.spec.name, self.node.accepts, self.spec.hwm,
                             int(self.spec.heartbeat_s * 1000), self.spec.max_message_bytes, curve, replay)
            self.inputs[upstream] = Input(sock, endpoint, self.spec.name, replay, REPLAY_WAIT_S)
        self.state = "ready"
        log.info("%s: ready", self.spec.name)
        background = [asyncio.ensure_future(self._checkpoint_loop())]
        if self.spec.control:
            loop = asyncio.get_running_loop()
            self.pulse = Pulse(self.ctx, self.spec.control, self.spec.name, self.spec.heartbeat_s,
                               lambda: self.state, lambda: loop.call_soon_threadsafe(self._orphaned))
            self.pulse.start()
            background.append(asyncio.ensure_future(self.pulse.tick()))
        try:
            if isinstance(self.node, Source):
                await self._produce()
            else:
                await self._consume()
            for msg in await self.node.close():
                await self.publish(msg)
            sent = {kind: dict(streams) for kind, streams in self.last_sent.items()}
            await self.publish(Message.new("-", EOS, np.zeros(0, np.uint8), sr=0, t_capture_ns=time.monotonic_ns(),
                                           t_wall=time.time(), meta={"sent": sent}))
            self.state = "done"
            self._save()
        finally:
            for task in background:
                task.cancel()
            for upstream in self.inputs.values():
                upstream.close()
            self.pub.close()
            if zap is not None:
                zap.close()
            if self.pulse is not None:
                self.pulse.close()  # its last beat says "done" when the node ended

    def stop(self) -> None:
        self.stopping.set()

    def _orphaned(self) -> None:
        log.warning("%s: supervisor is gone; stopping", self.spec.name)
        self.stop()

    def _restore(self, path: Path) -> None:
        """Restore a checkpoint. An unusable one (torn or filled disk, a hand edit, a node version whose state
        differs) is set aside as `<node>.corrupt` and the node starts fresh, with a warning and a count
        (`stream_checkpoint_corrupt_total`): retrying it would crash the node at every restart."""
        try:
            state = load_state(path)
            self.node.load_state_dict(state["node"])
            self.tracker.load_state_dict(state["seq_in"])
            self.done.load_state_dict(state["seq_in"])
            self._restore_output(state)
        except Exception as exc:  # noqa: BLE001 - any defect of the file or of the state in it
            path.replace(path.with_suffix(".corrupt"))
            self.node = type(self.node).from_table(self.spec.config, self.spec.name)
            self.tracker, self.done = SeqTracker(), SeqTracker()
            self.out_seq, self.last_sent = {}, {}
            metrics.CHECKPOINT_CORRUPT.labels(self.spec.name).inc()
            log.warning("%s: checkpoint %s is unusable (%s: %s); kept as %s, starting fresh", self.spec.name, path,
                        type(exc).__name__, exc, path.with_suffix(".corrupt").name)
            return
        self.restored = True
        log.info("%s: restored checkpoint %s", self.spec.name, path)

    def _restore_output(self, state: dict[str, Any]) -> None:
        """Output seq, what was told sent, and the epoch: re-made messages get the seq they had. A source without
        state (a device: what it sends after a restart is new audio) starts a new epoch instead."""
        if isinstance(self.node, Source) and not state["node"]:
            return
        epoch, out_seq, sent = state["epoch"], state["seq_out"], state["sent"]
        if not (isinstance(epoch, int) and 1 <= epoch <= MAX_SEQ and _counts(out_seq)
                and isinstance(sent, dict) and all(isinstance(k, str) and _counts(v) for k, v in sent.items())):
            raise ValueError("output seq, sent or epoch malformed")
        self.epoch, self.out_seq, self.last_sent = epoch, dict(out_seq), {k: dict(v) for k, v in sent.items()}

    async def _produce(self) -> None:
        source = self.node.produce()
        stop = asyncio.ensure_future(self.stopping.wait())
        try:
            while True:
                step = asyncio.ensure_future(anext(source))
                done, _ = await asyncio.wait({step, stop}, return_when=asyncio.FIRST_COMPLETED)
                if step not in done:
                    step.cancel()
                    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                        await step
                    break
                try:
                    msg = step.result()
                except StopAsyncIteration:
                    break
                await self.publish(msg)
        finally:
            stop.cancel()
            await source.aclose()

    async def _consume(self) -> None:
        poller = zmq.asyncio.Poller()
        ports, monitors = {}, {}
        for name, upstream in self.inputs.items():
            poller.register(upstream.sock, zmq.POLLIN)
            poller.register(upstream.monitor, zmq.POLLIN)
            ports[upstream.sock], monitors[upstream.monitor] = name, upstream
        while len(self.ended) < len(self.inputs):
            timeout = 0 if self.stopping.is_set() else 100
            events = await poller.poll(timeout)
            for sock, _ in events:
                if sock in monitors:
                    monitors[sock].read_events()
                else:
                    self._take(ports[sock])
            for name, upstream in self.inputs.items():
                if upstream.request and time.monotonic() > upstream.replay_until:
                    log.warning("%s: %s did not answer its replay request; going on with live messages",
                                self.spec.name, name)
                    self._release(name, upstream)
                if upstream.check():
                    self._messages["oversize"].inc()
                    self._log_once("oversize", f"{self.spec.name}: {name} sent a frame over "
                                   f"{self.spec.max_message_bytes} bytes; refused, counted, reconnected")
            if not events and not self.queue and self.stopping.is_set():
                return  # stop: everything already received is processed
            while self.queue:
                port, msg = self.queue.popleft()
                self._depth.set(len(self.queue))
                await self.handle(port, msg)
                await asyncio.sleep(0)  # heartbeats go out between messages: a node behind is slow, not hung

    def _take(self, port: str) -> None:
        """Move what the socket holds into the queue (bounded: the rest waits in ZeroMQ's buffer). While a replay
        is awaited, live frames are held; replayed ones (topic: our replay prefix) go in; other nodes' replays
        (reaching a node that subscribes to every topic) are ignored."""
        upstream = self.inputs[port]
        while len(self.queue) < self.spec.max_queue:
            frames = upstream.recv()
            if frames is None:
                break
            name = bytes(frames[0])
            if name.startswith(REPLAY):
                if not upstream.request or not name.startswith(upstream.prefix):
                    continue
                if name == upstream.prefix:  # the end mark
                    self._release(port, upstream)
                    continue
            elif upstream.request:
                upstream.held.append(frames)
                continue
            msg = self.receive(port, frames)
            if msg is not None:
                self.queue.append((port, msg))
        self._depth.set(len(self.queue))

    def _release(self, port: str, upstream: Input) -> None:
        """The replay from `port` is over: queue the live messages held meanwhile that it did not give."""
        for frames in upstream.end_replay():
            with contextlib.suppress(MessageError):
                if self.tracker.seen(port, decode(frames[1:]).header):
                    continue  # sent live and replayed: had once, not counted
            msg = self.receive(port, frames)
            if msg is not None:
                self.queue.append((port, msg))

    def receive(self, port: str, frames: list[bytes | memoryview]) -> Message | None:
        """The message of wire frames `[topic, header, array]` from input `port`, or None when it is refused (and
        counted: malformed, rejected). `stream.runner` and the fuzzer (tests/fuzz) feed nodes through this and
        `handle`."""
        try:
            msg = decode(frames[1:])
        except MessageError as exc:
            self._messages["malformed"].inc()
            self._log_once(exc.reason, f"{self.spec.name}: malformed message from {port} ({exc}); counting, going on")
            return None
        stream = msg.header.stream
        if msg.header.kind == EOS:
            if (stream, msg.header.sr, msg.data.size) != ("-", 0, 0):
                self._messages["malformed"].inc()
                self._log_once("eos", f"{self.spec.name}: end-of-stream from {port} with data or a stream id "
                               f"({stream!r}); only the runtime sends it: counted, ignored")
                return None
            return msg
        if stream not in self.tracker.streams() and len(self.tracker.streams()) >= self.spec.max_streams:
            self._messages["rejected"].inc()
            self._log_once("streams", f"{self.spec.name}: more than {self.spec.max_streams} stream ids; messages of "
                           f"new ones (here {stream!r}) are rejected and counted (raise [graph] max_streams)")
            return None
        order, missing = self.tracker.check(port, msg.header)
        if order is Order.DUPLICATE:
            self._messages["duplicate"].inc()
            self._log_once("duplicate", f"{self.spec.name}: {port} sent seq {msg.header.seq} of {stream!r} again "
                           "(re-made after its restart); dropped, counted")
            return None
        if order is Order.GAP:
            self._messages["gap"].inc()
            self._messages["dropped"].inc(missing)
            log.warning("%s: %d message(s) from %s lost before seq %d", self.spec.name, missing, port, msg.header.seq)
        elif order is Order.OUT_OF_ORDER:
            self._messages["out_of_order"].inc()
            log.warning("%s: seq from %s went back to %d (sender restarted)", self.spec.name, port, msg.header.seq)
        return msg

    async def handle(self, port: str, msg: Message) -> None:
        """Process one received message (end-of-stream included), count the result, publish the outputs."""
        async with self._step:
            await self._handle(port, msg)

    async def _handle(self, port: str, msg: Message) -> None:
        if msg.header.kind == EOS:
            if self._accounts(port, msg.header.meta.get("sent")):
                self.ended.add(port)
            else:
                self._messages["malformed"].inc()
                self._log_once("eos-count", f"{self.spec.name}: an end-of-stream from {port} does not match what it "
                               "sent; counted as malformed, going on")
            return
        metrics.TRANSPORT_LATENCY.labels(self.spec.name, port).observe(
            (time.monotonic_ns() - msg.header.t_capture_ns) / 1e9
        )
        start, cpu = time.perf_counter(), time.process_time()
        try:
            outputs = await self.node.process(msg, port)
        except StreamError as exc:
            self._messages["malformed"].inc()
            self._log_once(type(exc).__name__, f"{self.spec.name}: rejected a message from {port} ({exc})")
            self.done.mark(port, msg.header)
            return
        elapsed = time.perf_counter() - start
        self._messages["ok"].inc()
        self._process_seconds.observe(elapsed)
        self._process_cpu.inc(time.process_time() - cpu)
        if self.pulse is not None:
            self.pulse.step(elapsed)
        self._busy_s += elapsed
        self._audio_s += msg.duration_s
        if self._audio_s >= RTF_SPAN_S:  # over a span: a node that works every Nth message is not 0 or huge
            self._rtf.set(self._busy_s / self._audio_s)
            self._busy_s = self._audio_s = 0.0
        for out in outputs:
            await self.publish(out)
        self.done.mark(port, msg.header)

    def _accounts(self, port: str, sent: Any) -> bool:
        """Whether an end-of-stream's `sent` ({kind: {stream: last seq}}) names, for the kinds this node takes,
        exactly the last seq received on every stream heard from `port` (nothing of it is still in flight)."""
        if not isinstance(sent, dict) or not all(isinstance(v, dict) for v in sent.values()):
            return False
        accepts = self.node.accepts
        told = {stream: seq for kind, streams in sent.items() if not accepts or kind in accepts
                for stream, seq in streams.items()}
        return all(told.get(stream) == seq for stream, seq in self.tracker.positions(port).items())

    async def publish(self, msg: Message) -> None:
        """Stamp the epoch and the per-stream output seq (a source's position, when it tells one) and send."""
        position = self.node.position(msg) if isinstance(self.node, Source) and msg.header.kind != EOS else None
        seq = self.out_seq.get(msg.header.stream, 0) if position is None else position
        self.out_seq[msg.header.stream] = seq + 1
        self.last_sent.setdefault(msg.header.kind, {})[msg.header.stream] = seq
        await self.pub.send(msg.with_seq(seq, self.epoch))

    def _log_once(self, reason: str, text: str) -> None:
        if reason not in self._logged:
            self._logged.add(reason)
            log.warning(text)

    # -- checkpoints ------------------------------------------------------------------------------------------
    async def _checkpoint_loop(self) -> None:
        while True:
            await asyncio.sleep(self.spec.checkpoint_s)
            async with self._step:
                self._save()

    def _save(self) -> None:
        if self.spec.state_path:
            save_state(Path(self.spec.state_path),
                       {"node": self.node.state_dict(), "seq_in": self.done.state_dict(), "seq_out": self.out_seq,
                        "sent": self.last_sent, "epoch": self.epoch})


def _counts(value: Any) -> bool:
    """Whether `value` is a {stream: seq} map."""
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, int) and 0 <= v <= MAX_SEQ
                                           for k, v in value.items())


async def run_spec(spec: NodeSpec) -> None:
    """Build the node from its spec and run it until end of stream or SIGTERM/SIGINT."""
    node = resolve(spec.kind).from_table(spec.config, spec.name)
    ctx = zmq.asyncio.Context()
    runner = Runner(spec, node, ctx)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runner.stop)
    try:
        await runner.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):  # done: a stop arriving while the sockets linger is moot, and
            loop.remove_signal_handler(sig)  # would otherwise kill the exiting process (exit -15, counted a failure)
            signal.signal(sig, signal.SIG_IGN)
        ctx.destroy(linger=2000)


def main() -> None:
    """`python -m stream.runner [KIND...]`: import the kinds, then wait for a NodeSpec (one JSON line) on stdin.

    Why stdin: the supervisor keeps one such process ready ahead of need, its imports (NumPy, ZeroMQ, the
    graph's node modules) already done, so a crashed node is replaced in milliseconds instead of the second a
    fresh interpreter takes on a loaded machine. No spec (stdin closed) = not needed: exit quietly.
    """
    logging.basicConfig(level=os.environ.get("STREAM_LOG_LEVEL", "WARNING"),
                        format=f"%(asctime)s node[{os.getpid()}] %(levelname)s %(message)s")
    setproctitle.setproctitle("stream node (standby)")
    for kind in sys.argv[1:]:
        resolve(kind)
    line = sys.stdin.readline()
    if not line.strip():
        return
    spec = NodeSpec.from_json(line)
    setproctitle.setproctitle(f"stream node {spec.name} ({spec.kind})")  # `ps`/`top` show which node is which
    for handler in logging.getLogger().handlers:
        handler.setFormatter(logging.Formatter(f"%(asctime)s {spec.name}[{os.getpid()}] %(levelname)s %(message)s"))
    try:
        asyncio.run(run_spec(spec))
    except StreamError as exc:
        log.error("node %s: %s", spec.name, exc)
        sys.exit(EXIT_FATAL)


if __name__ == "__main__":
    main()
