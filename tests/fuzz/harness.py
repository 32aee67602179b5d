"""Fuzzing every node, the wire decoder and graph configs with generated messages (hypothesis).

Shared by the CI profile (`tests/fuzz/test_fuzz.py`, a few hundred inputs per target) and the full run
(`bench/fuzz.py`, 10,000 per node). Targets are found, not listed: every `nodes/<kind>/node.py` whose node takes
messages, plus the sinks node, so a node added to the project is fuzzed with no change here.

A node is driven through the real runtime path (`stream.runner.Runner.receive` then `.handle`, publishing to a
real ZeroMQ socket), with valid headers carrying hostile values, wrong shapes and dtypes, NaN/inf/denormal/DC/
clipped audio, huge declared sizes, every kind and random bytes. Each input must:
- neither crash (any exception out of the runtime) nor hang (`HANG_S` per input, SIGALRM);
- be counted exactly once in `stream_messages_total{node,result}` (ok, malformed or rejected), unless it is an
  end-of-stream the runtime accepted;
- when refused, leave the node's state exactly as it was (nothing already accepted is lost);
and the process's memory must stay bounded over the run (`Target.rss_growth`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import importlib
import logging
import math
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import psutil
import zmq.asyncio
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from nodes.diarization.node import DiarizationNode
from nodes.diarization.stitching import Plan
from nodes.embedding.campplus import CampplusConfig
from nodes.segmentation.node import window_message
from stream.message import DTYPES, Message, encode
from stream.node import Source, resolve
from stream.paths import REPO_ROOT
from stream.runner import RESULTS, NodeSpec, Runner, _pack
from stream.transport import EOS, Publisher, topic

HANG_S = 20.0  # s one input may take (a model node on a loaded 2-core machine stays far below)
STREAMS = [f"s{i}" for i in range(12)]  # more ids than MAX_STREAMS: the per-node cap is exercised
MAX_STREAMS = 8
EMBEDDING_DIM = CampplusConfig().embedding_size  # a window message carries 2 embeddings per local speaker
PORT = "up"


class Hang(Exception):
    """An input took longer than HANG_S."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def alarm(signum: int, frame: Any) -> None:
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def node_kinds() -> list[str]:
    """Every node kind that takes messages: `nodes/*/node.py` (sources excluded) and the sinks node."""
    kinds = []
    for path in sorted((REPO_ROOT / "nodes").glob("*/node.py")):
        if not issubclass(resolve(path.parent.name), Source):
            kinds.append(path.parent.name)
    return [*kinds, "stream.sinks.node:SinksNode"]


def config_classes() -> dict[str, type]:
    """Config dataclass of every node kind, sources included (their configs are loaded too)."""
    out = {p.parent.name: resolve(p.parent.name).Config for p in sorted((REPO_ROOT / "nodes").glob("*/node.py"))}
    out["sinks"] = importlib.import_module("stream.sinks.node").SinksConfig
    return out


def _fingerprint_config(tmp: Path) -> dict[str, Any]:
    from nodes.fingerprint.index import FingerprintIndex

    FingerprintIndex.empty().save(tmp / "fingerprint-index")
    return {"index": str(tmp / "fingerprint-index")}


def _sinks_config(tmp: Path) -> dict[str, Any]:
    return {"sinks": [{"kind": "jsonl", "path": str(tmp / "sinks.jsonl")}]}


# Nodes whose setup needs a file (an index, a sink's path): the config they are fuzzed with. Any other node runs
# with its defaults; a new node that cannot start from defaults fails its fuzz test with its own ConfigError.
CONFIGS = {"fingerprint": _fingerprint_config, "stream.sinks.node:SinksNode": _sinks_config}


# -- generated configs ------------------------------------------------------------------------------------------
CONFIG_VALUES = st.one_of(st.integers(-2**70, 2**70), st.floats(), st.text(max_size=12), st.booleans(),
                          st.lists(st.integers(-2, 3), max_size=3),
                          st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))


def config_tables(config: type) -> st.SearchStrategy[dict[str, Any]]:
    """`[nodes.config]` tables for a node's Config dataclass: its own keys and an unknown one, any TOML value."""
    names = [f.name for f in dataclasses.fields(config)]
    return st.dictionaries(st.sampled_from([*names, "unknown"]), CONFIG_VALUES, max_size=4)


GRAPH_TABLES = st.fixed_dictionaries({}, optional={
    "graph": st.dictionaries(st.sampled_from(["name", "hwm", "heartbeat_s", "hang_s", "checkpoint_s", "max_streams",
                                              "max_message_mb", "plaintext_tcp", "x"]), CONFIG_VALUES, max_size=3),
    "metrics": st.dictionaries(st.sampled_from(["host", "port", "x"]), CONFIG_VALUES, max_size=2),
    "nodes": st.one_of(CONFIG_VALUES, st.lists(st.fixed_dictionaries(
        {"name": st.one_of(st.sampled_from(["capture", "loudness", "../evil", ""]), CONFIG_VALUES),
         "kind": st.one_of(st.sampled_from(["capture", "loudness", "nope"]), CONFIG_VALUES)},
        optional={"inputs": st.one_of(st.just(["capture"]), CONFIG_VALUES), "endpoint": st.one_of(
            st.sampled_from(["tcp://127.0.0.1:5999", "garbage", "ipc:///tmp/x"]), CONFIG_VALUES),
            "config": st.one_of(st.dictionaries(st.sampled_from(["source", "stream", "every", "rate"]),
                                                CONFIG_VALUES, max_size=2), CONFIG_VALUES)}), max_size=3)),
    "sinks": st.one_of(CONFIG_VALUES, st.lists(st.dictionaries(st.sampled_from(["kind", "path", "every"]),
                                                               CONFIG_VALUES, max_size=2), max_size=2)),
})



# -- generated messages -----------------------------------------------------------------------------------------
@functools.cache
def templates() -> dict[str, Message]:
    """A valid message of each kind a node may take (hostile variants are drawn around them)."""
    g = DiarizationNode().chain.geometry
    frames = g.frames_per_window
    activity = np.zeros((frames, 3), np.float32)
    activity[: frames // 2, 0] = 0.9
    window = window_message("s0", 0, activity, None, Plan(False, {}), (10**9, 1.0), g.step, g)
    pcm = Message.new("s0", "pcm", np.zeros((320, 1), np.float32), sr=16000, t_capture_ns=10**9, t_wall=1.0)
    event = Message.event(pcm, {"type": "level", "stream": "s0", "t_audio": 0.0, "t_capture": 1.0,
                                "duration": 0.02, "rms_dbfs": -20.0, "peak_dbfs": -10.0})
    return {"pcm": pcm, "window": window, "event": event}


HOSTILE_VALUES = st.one_of(
    st.integers(-2**63, 2**64 - 1), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.none(), st.booleans(), st.just([[1]]), st.lists(st.integers(-3, 5), max_size=3),
    st.lists(st.lists(st.integers(-3, 5), max_size=3), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(-2**63, 2**64 - 1), max_size=3),
)  # msgpack carries ints in [-2**63, 2**64)
SIGNALS = ("zeros", "dc", "clipped", "noise", "nan", "inf", "denormal", "huge", "sine")


def samples(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` float64 samples of a hostile (or plain) signal."""
    t = np.arange(n)
    return {
        "zeros": lambda: np.zeros(n), "dc": lambda: np.full(n, 0.7), "clipped": lambda: np.sign(np.sin(t / 7.0)),
        "noise": lambda: rng.normal(0, 0.3, n), "nan": lambda: np.where(t % 5 == 0, np.nan, 0.1),
        "inf": lambda: np.where(t % 7 == 0, np.inf, -0.1), "denormal": lambda: np.full(n, 1e-42),
        "huge": lambda: np.full(n, 1e30), "sine": lambda: 0.5 * np.sin(2 * np.pi * 440 * t / 16000),
    }[kind]()


@dataclass
class Clocks:
    """Where each stream stands in the node under test, learned from what it accepted (`Target.feed`), so that
    most generated inputs can be the stream's next message: without this a stateful node (a diarization window
    index, a capture time) refuses nearly every input and its state machine sees little fuzzed input."""

    last_seq: dict[str, int] = field(default_factory=dict)  # last seq the runtime took per stream (its tracker)
    window: dict[str, int] = field(default_factory=dict)  # next window index the node expects
    t0_ns: dict[str, int] = field(default_factory=dict)  # capture time of the stream's audio time 0
    audio_ns: dict[str, int] = field(default_factory=dict)  # audio accepted so far (ns of pcm)

    def next_seq(self, stream: str) -> int:
        return self.last_seq.get(stream, -1) + 1

    def accepted(self, msg: Message) -> None:
        """Follow the node's clock past a message it took."""
        h, s = msg.header, msg.header.stream
        step = h.meta.get("step")
        if h.kind == "window" and isinstance(h.meta.get("window"), int) and isinstance(step, float):
            self.window[s] = h.meta["window"] + 1
            self.t0_ns.setdefault(s, h.t_capture_ns - round(self.window[s] * step * 1e9))
        elif h.kind == "pcm" and h.sr > 0 and h.shape:
            self.t0_ns.setdefault(s, h.t_capture_ns)
            self.audio_ns[s] = h.t_capture_ns - self.t0_ns[s] + round(h.shape[0] / h.sr * 1e9)


IN_SEQUENCE = 7  # of 10 generated inputs are the stream's next message (hostile content, valid framing)
PCM_SIGNALS = ("zeros", "dc", "clipped", "noise", "denormal", "sine", "loud", "noise", "sine", "nan", "huge")


@st.composite
def wire_frames(draw: st.DrawFn, accepts: tuple[str, ...], clocks: Clocks) -> list[bytes]:
    """[topic, header, array] of one generated input for a node taking `accepts`: mostly the next message of a
    stream the node holds (`in_sequence_frames`), else one with hostile header fields (`hostile_frames`)."""
    kinds = [k for k in accepts if k in templates()] or list(templates())
    if draw(st.integers(0, 9)) < IN_SEQUENCE:
        return draw(in_sequence_frames(draw(st.sampled_from(kinds)), clocks))
    return draw(hostile_frames(accepts, clocks))


@st.composite
def in_sequence_frames(draw: st.DrawFn, kind: str, clocks: Clocks) -> list[bytes]:
    """The next message of a stream (its seq, window index and capture time), well framed, with hostile content:
    pcm of DC, clipping, denormals, NaN, 60 dB over full scale, any length and channel count; windows of extreme
    or degenerate activity, zero / NaN / huge embeddings, odd `continues`, audio_s anywhere in its range, small
    jumps ahead; events with hostile field values. Reaches the node's state machine, not only its checks."""
    known, i = sorted(clocks.last_seq), draw(st.integers(0, len(STREAMS) - 1))  # drawn alike whatever the state
    stream = known[i % len(known)] if len(known) >= MAX_STREAMS else STREAMS[i]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    t0 = clocks.t0_ns.get(stream, 10**9)
    meta: dict[str, Any]
    if kind == "pcm":
        n = draw(st.sampled_from([320, 320, 1600, 16000, 1, 0, 47_999])) if draw(st.booleans()) else \
            draw(st.integers(0, 20_000))
        channels = draw(st.sampled_from([0, 1, 1, 1, 2]))  # 0: shape [n]
        sr = draw(st.sampled_from([16000] * 8 + [8000, 44100]))
        signal = draw(st.sampled_from(PCM_SIGNALS))
        values = samples("dc", n, rng) * 999 if signal == "loud" else samples(signal, n, rng)
        data = np.repeat(values[:, None], max(channels, 1), axis=1) if channels else values
        meta = {"valid_frames": draw(st.integers(0, n))} if draw(st.integers(0, 4)) == 0 else {}
        jump_ns = draw(st.sampled_from([0] * 8 + [-10**9, 3 * 10**9, 400 * 10**9]))
        t_ns = t0 + clocks.audio_ns.get(stream, 0) + jump_ns
        msg = Message.new(stream, "pcm", data.astype(np.float32), sr=sr, t_capture_ns=t_ns, t_wall=t_ns / 1e9,
                          meta=meta)
    elif kind == "window":
        base = templates()["window"]
        step, duration = base.header.meta["step"], base.header.meta["duration"]
        frames = base.header.shape[1]
        k = clocks.window.get(stream, 0) + draw(st.sampled_from([0] * 8 + [1, 7, -1]))
        pattern = draw(st.sampled_from(["uniform", "ones", "zeros", "bursts", "huge", "denormal", "negative"]))
        activity = {"uniform": lambda: rng.uniform(0, 1, (3, frames)), "ones": lambda: np.ones((3, frames)),
                    "zeros": lambda: np.zeros((3, frames)),
                    "bursts": lambda: (rng.uniform(0, 1, (3, frames // 25 + 1)) > 0.5).repeat(25, axis=1)[:, :frames],
                    "huge": lambda: np.full((3, frames), 1e30), "denormal": lambda: np.full((3, frames), 1e-42),
                    "negative": lambda: -rng.uniform(0, 1, (3, frames))}[pattern]()
        data = activity
        if draw(st.booleans()):  # embeddings: per local speaker 2 x dim, NaN for a speaker not embedded
            emb = draw(st.sampled_from(["normal", "zeros", "nan", "huge", "same", "mixed"]))
            shape = (3, 2 * EMBEDDING_DIM)
            e = {"normal": lambda: rng.normal(0, 1, shape), "zeros": lambda: np.zeros(shape),
                 "nan": lambda: np.full(shape, np.nan), "huge": lambda: np.full(shape, 1e30),
                 "same": lambda: np.tile(rng.normal(0, 1, shape[1]), (3, 1)),
                 "mixed": lambda: np.where(rng.uniform(size=(3, 1)) < 0.5, np.nan, rng.normal(0, 1, shape))}[emb]()
            data = np.concatenate([activity, e], axis=1)
        t_end = (k + 1) * step
        audio_s = draw(st.sampled_from([t_end, max(t_end - duration, 0.0), t_end + duration + 1.0, round(t_end)]))
        continues = draw(st.lists(st.lists(st.integers(0, 2), min_size=2, max_size=2), max_size=4))
        meta = {"window": k, "audio_s": audio_s, "continues": continues, "step": step, "duration": duration}
        t_ns = t0 + round(t_end * 1e9)
        with np.errstate(all="ignore"):
            msg = Message.new(stream, "window", data.astype(np.float32), sr=0, t_capture_ns=t_ns, t_wall=t_ns / 1e9,
                              meta=meta)
    else:
        meta = dict(templates()["event"].header.meta, stream=stream)
        for key in draw(st.lists(st.sampled_from([*meta, "x"]), max_size=2, unique=True)):
            meta[key] = draw(HOSTILE_VALUES)
        msg = Message.new(stream, "event", np.zeros(0, np.uint8), sr=0, t_capture_ns=t0, t_wall=t0 / 1e9, meta=meta)
    msg = msg.with_seq(clocks.next_seq(stream))
    frames_out = [topic(kind, stream), *encode(msg)]
    if draw(st.integers(0, 19)) == 0:  # an array whose size does not match its header
        frames_out[2] = bytes(frames_out[2])[: draw(st.integers(0, max(len(frames_out[2]) - 1, 0)))]
    return frames_out


@st.composite
def hostile_frames(draw: st.DrawFn, accepts: tuple[str, ...], clocks: Clocks) -> list[bytes]:
    """[topic, header, array] of one message with hostile header fields (or random frames), for a node taking
    `accepts`: mostly refused by the checks, so it tests the checks."""
    shapes = templates()
    if draw(st.integers(0, 19)) == 0:  # random frames: not even msgpack
        return [b"x/"] + draw(st.lists(st.binary(max_size=64), min_size=0, max_size=3))
    base_kind = draw(st.sampled_from([*(k for k in accepts if k in shapes), "pcm", "window", "event"]))
    base = shapes[base_kind]
    h = base.header
    stream = draw(st.sampled_from(STREAMS))
    seq = clocks.next_seq(stream)
    t_ns = clocks.t0_ns.get(stream, 10**9) + clocks.audio_ns.get(stream, 0)
    fields: dict[str, Any] = {
        "v": 1, "stream": stream, "seq": seq, "t_capture_ns": t_ns, "t_wall": t_ns / 1e9,
        "kind": base_kind, "sr": h.sr, "dtype": h.dtype, "shape": list(h.shape), "meta": dict(h.meta),
    }
    hostile = {  # per field, values a sender could put in a header that still parses
        "v": st.sampled_from([2, 0, "1", None]),
        "stream": st.sampled_from(["", "-", "a/b", "../x", "x" * 80, "é", "s 1"]),
        "seq": st.one_of(st.integers(0, 2**64 - 1), st.integers(-9, -1), st.just(seq + 10**7)),
        "t_capture_ns": st.integers(-2**63, 2**64 - 1),
        "t_wall": st.floats(allow_nan=True, allow_infinity=True),
        "kind": st.sampled_from(["eos", "pcm", "window", "event", "fbank", "", "k" * 70]),
        "sr": st.sampled_from([0, 1, 8000, 22050, 44100, 2**31, -1]),
        "dtype": st.sampled_from([*sorted(DTYPES), "float16", "object", "S4"]),
        "shape": st.one_of(st.lists(st.integers(0, 4000), max_size=3).filter(lambda s: math.prod(s) <= 40_000),
                           st.just([2**40]), st.just([]), st.just([1] * 9), st.just([3, 2**62])),
        "meta": st.dictionaries(st.text(max_size=6), HOSTILE_VALUES, max_size=3),
    }
    for name in draw(st.lists(st.sampled_from(sorted(hostile)), max_size=draw(st.sampled_from([0, 0, 0, 1, 1, 2, 4])),
                              unique=True)):
        fields[name] = draw(hostile[name])
    for key in draw(st.lists(st.sampled_from([*h.meta, "valid_frames", "type", "x"]), max_size=2, unique=True)):
        if isinstance(fields["meta"], dict) and draw(st.integers(0, 2)) == 0:
            fields["meta"][key] = draw(HOSTILE_VALUES)
    if draw(st.integers(0, 29)) == 0:
        del fields[draw(st.sampled_from(sorted(fields)))]
    if draw(st.integers(0, 29)) == 0:
        fields["extra"] = 1
    kind = fields.get("kind", base_kind)
    data = b""
    try:
        dtype = np.dtype(fields.get("dtype", "float32"))
        count = math.prod(fields.get("shape", [])) if isinstance(fields.get("shape"), list) else 0
        if dtype.kind in "fiub c".replace(" ", "") and count <= 40_000:
            rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
            values = samples(draw(st.sampled_from([*SIGNALS, "noise", "sine", "zeros"])), count, rng)
            if base_kind == "window" and fields.get("shape") == list(h.shape) and draw(st.booleans()):
                values = np.clip(np.abs(values), 0, 1) if np.isfinite(values).all() else values
            with np.errstate(all="ignore"):
                data = values.astype(dtype).tobytes()
            if draw(st.integers(0, 9)) == 0:  # a size that does not match the header
                data = data[: draw(st.integers(0, max(len(data) - 1, 0)))] + draw(st.binary(max_size=8))
    except (TypeError, ValueError, OverflowError):
        data = draw(st.binary(max_size=64))
    if kind == EOS and draw(st.booleans()):  # a well-formed end-of-stream, accounting or not
        fields.update(stream="-", sr=0, dtype="uint8", shape=[0], seq=0,
                      meta={"sent": draw(st.one_of(st.just({}), st.just({base_kind: dict(clocks.last_seq)})))})
        data = b""
    header = msgpack.packb(fields, use_bin_type=True)
    return [topic(str(kind)[:80], str(stream)[:80]), header, data]


# -- one node under fuzzing -------------------------------------------------------------------------------------
@dataclass
class Target:
    """A node behind the real runtime (`Runner`), fed one generated input at a time."""

    kind: str
    runner: Runner
    loop: asyncio.AbstractEventLoop
    clocks: Clocks = field(default_factory=Clocks)
    tried: int = 0
    results: dict[str, int] = field(default_factory=dict)
    rss_start: int = 0

    @classmethod
    def start(cls, kind: str, tmp: Path) -> Target:
        logging.getLogger("stream.runner").setLevel(logging.ERROR)  # a warning per gap would drown the output
        loop = asyncio.new_event_loop()
        config = CONFIGS[kind](tmp) if kind in CONFIGS else {}
        name = "fuzz-" + kind.rsplit(":", 1)[-1].lower()
        node = resolve(kind).from_table(config, name)
        spec = NodeSpec(name=name, kind=kind, config=config, endpoint=f"inproc://{name}", max_streams=MAX_STREAMS)
        ctx = zmq.asyncio.Context.instance()

        async def setup() -> Runner:
            await node.setup()
            runner = Runner(spec, node, ctx)
            runner.pub = Publisher(ctx, spec.endpoint, [], hwm=1000)
            return runner

        runner = loop.run_until_complete(setup())
        target = cls(kind, runner, loop)
        target.rss_start = psutil.Process().memory_info().rss
        return target

    def counts(self) -> dict[str, float]:
        return {r: REGISTRY.get_sample_value("stream_messages_total", {"node": self.runner.spec.name, "result": r})
                or 0.0 for r in RESULTS}

    def state(self) -> bytes:
        return msgpack.packb(self.runner.node.state_dict(), default=_pack, use_bin_type=True)

    def feed(self, frames: list[bytes]) -> str:
        """Run one input through the runtime; returns how it ended (a result name or "eos"). Raises on a crash,
        a hang, an input not counted exactly once, or a refused input that changed the node's state."""
        before, state = self.counts(), self.state()
        self.tried += 1
        with time_limit(HANG_S):
            msg = self.runner.receive(PORT, frames)
            if msg is not None:
                self.loop.run_until_complete(self.runner.handle(PORT, msg))
        self.clocks.last_seq = self.runner.tracker.positions(PORT)
        after = self.counts()
        delta = {r: after[r] - before[r] for r in RESULTS if r not in ("dropped", "gap", "out_of_order")}
        if PORT in self.runner.ended:  # an end-of-stream the runtime accepted: the input ends, nothing counted
            self.runner.ended.clear()
            outcome = "eos"
            assert sum(delta.values()) == 0, f"accepted end-of-stream also counted: {delta}"
        else:
            counted = [r for r, n in delta.items() if n]
            assert sum(delta.values()) == 1 and len(counted) == 1, f"input counted {delta}, expected once"
            outcome = counted[0]
        if outcome == "ok" and msg is not None:
            self.clocks.accepted(msg)
        if outcome != "ok":
            assert self.state() == state, f"a refused input ({outcome}) changed the node's state"
        self.results[outcome] = self.results.get(outcome, 0) + 1
        return outcome

    def rss_growth(self) -> int:
        """Bytes the process grew by since the node was set up."""
        return psutil.Process().memory_info().rss - self.rss_start

    def close(self) -> None:
        self.loop.run_until_complete(self.runner.node.close())
        self.runner.pub.close()
        self.loop.close()

