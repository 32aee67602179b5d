"""Segmentation node: pcm of one or many streams -> per rolling window, local speaker activity and embeddings.

The heavy half of the meeting graph (segmentation-3.0 every window, CAM++ when a new voice appears or every
`embed_every` windows, via `nodes.diarization.windows.WindowAnalyzer`); the light half, the `diarization` node,
turns its "window" messages into global speakers and turns. One node serves every stream wired into it: state
is per stream id, and windows that are ready at the same time (several streams, or a backlog) share one model
call, padded to a power-of-two batch so only `log2(max_batch) + 1` shapes are ever compiled (all at `setup`).

Output, one message per window, kind "window", sr 0 (axis 0 is not time):
- data float32 [3 local speakers, frames_per_window (+ 192 embedding dims when the window was embedded)];
- `t_capture_ns`/`t_wall`: capture time of the window's end (audio time (k + 1) * step);
- meta: `window` k, `audio_s` (s of audio received so far on the stream), `continues` ([[local, previous local]]
  of speakers stitched to the previous window), `step`, `duration` (s, so the consumer can check geometries).

    [[nodes]]
    name = "segmentation"
    kind = "segmentation"
    inputs = ["capture"]              # one or many capture nodes (distinct stream ids)
    config = { max_batch = 8, max_wait_ms = 100.0 }
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from nodes.diarization.aggregation import WindowGeometry
from nodes.diarization.pipeline import SAMPLE_RATE, DiarizationConfig, WindowBuffer
from nodes.diarization.stitching import EmbeddingPlanner, Plan
from nodes.diarization.windows import TrunkRing, WindowAnalyzer
from nodes.embedding.campplus import CampplusConfig
from nodes.segmentation.powerset import NUM_SPEAKERS
from stream.allocator import keep_freed_memory, release_freed_memory
from stream.errors import ConfigError, MessageError
from stream.message import Message
from stream.models import use_compile_cache
from stream.node import Node
from stream.pcm import mono

_DEFAULTS = DiarizationConfig()
REALIGN_S = 0.1  # s: audio further off its capture time than this is put back on the stream's time
MAX_FILL_S = 30.0  # s: audio gaps up to this are filled with silence; the stream starts afresh after longer ones
log = logging.getLogger(__name__)


def mono_pcm(msg: Message, rate: int = SAMPLE_RATE) -> np.ndarray:
    """The real samples of a float32 pcm message at `rate` Hz, down-mixed to mono (padding of a last block cut);
    MessageError for anything else (`stream.pcm`)."""
    return mono(msg, rate)


def window_message(stream: str, k: int, activity: np.ndarray, embeddings: np.ndarray | None, plan: Plan,
                   t_end: tuple[int, float], audio_s: float, geometry: WindowGeometry) -> Message:
    """A "window" message (layout in the module docstring); `t_end` = (capture ns, Unix s) of the window end."""
    data = activity.T if embeddings is None else np.concatenate([activity.T, embeddings], axis=1)
    meta = {"window": k, "audio_s": audio_s, "continues": [[int(a), int(b)] for a, b in plan.continues.items()],
            "step": geometry.step, "duration": geometry.duration}
    return Message.new(stream, "window", data.astype(np.float32), sr=0, t_capture_ns=t_end[0], t_wall=t_end[1],
                       meta=meta)


def read_window(msg: Message, geometry: WindowGeometry) -> tuple[np.ndarray, np.ndarray | None, Plan]:
    """(activity [frames, 3], embeddings [3, dim] or None, plan) of a "window" message made for `geometry`."""
    h, frames, dim = msg.header, geometry.frames_per_window, CampplusConfig().embedding_size
    if h.kind != "window" or h.dtype != "float32" or len(h.shape) != 2 or h.shape[0] != NUM_SPEAKERS \
            or h.shape[1] not in (frames, frames + dim):
        raise MessageError("input", f"expected a float32 'window' message [{NUM_SPEAKERS}, {frames} (+ {dim})], got "
                                    f"{h.kind} {h.dtype} {list(h.shape)}")
    if (h.meta.get("step"), h.meta.get("duration")) != (geometry.step, geometry.duration):
        raise MessageError("geometry", f"windows of {h.meta.get('duration')} s every {h.meta.get('step')} s, this "
                                       f"node expects {geometry.duration} s every {geometry.step} s: set the same "
                                       "duration and step on the segmentation and diarization nodes")
    if not np.isfinite(msg.data[:, :frames]).all():  # embeddings of speakers not embedded are NaN by design
        raise MessageError("nonfinite", "window activity has NaN or infinite values")
    window, audio_s, continues = h.meta.get("window"), h.meta.get("audio_s"), h.meta.get("continues")
    if not _count(window) or not (_count(audio_s) or isinstance(audio_s, float) and math.isfinite(audio_s)
                                  and audio_s >= 0):
        raise MessageError("meta", f"window={window!r} must be a window index >= 0 and audio_s={audio_s!r} seconds")
    if not isinstance(continues, list) or not all(
            isinstance(pair, list) and len(pair) == 2 and all(_count(i) and i < NUM_SPEAKERS for i in pair)
            for pair in continues):
        raise MessageError("meta", f"continues={continues!r} must be [[local, previous local], ...] of speakers "
                                   f"0..{NUM_SPEAKERS - 1}")
    embeddings = msg.data[:, frames:] if h.shape[1] > frames else None
    plan = Plan(embeddings is not None, {a: b for a, b in continues})
    return np.asarray(msg.data[:, :frames].T), embeddings, plan


def _count(value: object) -> bool:
    """Whether `value` is an int >= 0 (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@dataclass(frozen=True)
class SegmentationConfig:
    """Window geometry and planner knobs must match the diarization node's (duration, step, tau_active)."""

    duration: float = _DEFAULTS.geometry.duration  # s per window the model sees
    step: float = _DEFAULTS.geometry.step  # s between windows: how often each stream's output advances
    embed_every: int = _DEFAULTS.embed_every  # >= 1: embed at least every this many windows
    tau_active: float = _DEFAULTS.clustering.tau_active  # [0, 1] a local speaker is active from this probability
    overlap_weight: float = _DEFAULTS.overlap_weight  # [0, 1] pooling weight of overlapped frames
    max_batch: int = 1  # windows per model call (power of two); >1 batches streams whose windows are ready together
    max_wait_ms: float = 0.0  # ms a ready window may wait for others to share its model call (adds latency)

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.max_batch & (self.max_batch - 1):
            raise ConfigError(f"segmentation max_batch must be a power of two >= 1, got {self.max_batch}")
        if self.max_wait_ms < 0:
            raise ConfigError(f"segmentation max_wait_ms must be >= 0, got {self.max_wait_ms}")
        if self.embed_every < 1:
            raise ConfigError(f"segmentation embed_every must be >= 1, got {self.embed_every}")
        self.geometry  # noqa: B018 - validates duration and step (ConfigError)

    @property
    def geometry(self) -> WindowGeometry:
        return replace(_DEFAULTS.geometry, duration=self.duration, step=self.step, latency=self.step)


class StreamWindows:
    """Per-stream state: the rolling buffer, the embedding planner, the CAM++ trunk ring, the window count and the
    time base."""

    def __init__(self, config: SegmentationConfig, t0: tuple[int, float]) -> None:
        self.config = config
        self.t0 = t0  # (capture ns, Unix s) of the stream's first sample
        self._begin(0)

    def _begin(self, sample: int) -> None:
        """Start afresh at `sample` (a step boundary) of the stream's time, as if all before were silence."""
        g = self.config.geometry
        self.buffer = WindowBuffer(g)
        self.buffer.samples = sample
        self.ring = TrunkRing(g.steps_per_window, g.frames_per_step)
        self.planner = EmbeddingPlanner(self.config.embed_every, self.config.tau_active, g.frames_per_step,
                                        g.resolution)
        self.windows = sample // self.buffer.step  # windows cut so far (window k ends at (k + 1) * step)

    def on_time(self, samples: np.ndarray, t_capture_ns: int) -> np.ndarray:
        """`samples` (a block captured at `t_capture_ns`) made to fit the stream's time, so that window k always
        ends at (k + 1) * step. Audio lost upstream (drops, a node restarting) becomes silence when the gap is
        up to `MAX_FILL_S`; after a longer one the stream starts afresh on the same window grid at the block's
        own time (the diarization node fills the windows in between with silence). Audio heard twice (a source
        resumed from its checkpoint) is cut. Offsets under `REALIGN_S` (a device clock's jitter) are left alone."""
        at = round((t_capture_ns - self.t0[0]) * SAMPLE_RATE / 1e9)  # this block's first sample, stream time
        off = at - self.buffer.samples
        if abs(off) <= REALIGN_S * SAMPLE_RATE:
            return samples
        if off < 0:
            return samples[min(-off, len(samples)):]
        log.warning("stream audio jumped %.2f s ahead at %.2f s (audio lost upstream); windows go on at their time",
                    off / SAMPLE_RATE, at / SAMPLE_RATE)
        if off > MAX_FILL_S * SAMPLE_RATE:
            self._begin(at // self.buffer.step * self.buffer.step)
            off = at - self.buffer.samples
        return np.concatenate([np.zeros(off, np.float32), samples])

    def state_dict(self) -> dict[str, Any]:
        return {"buffer": self.buffer.buffer.copy(), "samples": self.buffer.samples, "planner":
                self.planner.state_dict(), "ring": self.ring.state_dict(), "windows": self.windows,
                "t0": list(self.t0)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.buffer.buffer, self.buffer.samples = np.asarray(state["buffer"], np.float32), int(state["samples"])
        self.planner.load_state_dict(state["planner"])
        self.ring.load_state_dict(state["ring"])
        self.windows, self.t0 = int(state["windows"]), (int(state["t0"][0]), float(state["t0"][1]))


@dataclass
class Pending:
    stream: str
    k: int
    samples: np.ndarray
    audio_s: float
    ready: float  # time.monotonic() when the window was cut


class SegmentationNode(Node[SegmentationConfig]):
    Config = SegmentationConfig
    accepts = ("pcm",)

    def __init__(self, config: SegmentationConfig | None = None, name: str | None = None) -> None:
        super().__init__(config, name)
        self.streams: dict[str, StreamWindows] = {}
        self.pending: list[Pending] = []

    async def setup(self) -> None:
        from stream.models import load_params

        use_compile_cache()
        keep_freed_memory()  # model calls reuse heap pages instead of page-faulting fresh mmaps
        c = self.config
        self.analyzer = WindowAnalyzer(load_params("segmentation-3.0"), load_params("campplus"), c.geometry,
                                       c.overlap_weight)
        batch = 1
        while batch <= c.max_batch:  # every batch shape: no compile while live
            self.analyzer.warmup(batch)
            batch *= 2

    async def process(self, msg: Message, port: str = "") -> list[Message]:
        h = msg.header
        samples = mono_pcm(msg)
        s = self.streams.get(h.stream)
        if s is None:
            s = self.streams[h.stream] = StreamWindows(self.config, (h.t_capture_ns, h.t_wall))
        samples = s.on_time(samples, h.t_capture_ns)  # may start the stream's buffer afresh
        self._cut(h.stream, s.buffer.push(samples))
        waited = time.monotonic() - self.pending[0].ready if self.pending else 0.0
        if len(self.pending) >= self.config.max_batch or waited * 1000 >= self.config.max_wait_ms:
            return self._run()
        return []

    async def close(self) -> list[Message]:
        for stream, s in self.streams.items():
            self._cut(stream, s.buffer.flush())
        return self._run()

    def _cut(self, stream: str, windows: list[np.ndarray]) -> None:
        s = self.streams[stream]
        for samples in windows:
            self.pending.append(Pending(stream, s.windows, samples, s.buffer.duration, time.monotonic()))
            s.windows += 1

    def _run(self) -> list[Message]:
        """Model calls over every pending window (batches of <= max_batch), then one message per window."""
        out = []
        while self.pending:
            todo, self.pending = self.pending[: self.config.max_batch], self.pending[self.config.max_batch:]
            out += self._batch(todo)
        release_freed_memory()
        return out

    def _batch(self, todo: list[Pending]) -> list[Message]:
        size = 1 << (len(todo) - 1).bit_length()  # next power of two: a compiled shape
        windows = np.zeros((size, self.analyzer.samples), np.float32)
        windows[: len(todo)] = [p.samples for p in todo]
        activity = self.analyzer.segment(windows)
        streams = [self.streams[p.stream] for p in todo]
        plans = [s.planner(a) for s, a in zip(streams, activity)]  # in window order per stream
        padding = [s.buffer.padding(p.k) for s, p in zip(streams, todo)]  # silence before time 0
        embeddings = self.analyzer.embed(windows, activity, padding, [s.ring for s in streams],
                                         [plan.embed for plan in plans])
        g = self.config.geometry
        out = []
        for i, (p, plan) in enumerate(zip(todo, plans)):
            t0_ns, t0_wall = self.streams[p.stream].t0
            t_end = (p.k + 1) * g.step
            out.append(window_message(p.stream, p.k, activity[i], embeddings[i], plan,
                                      (t0_ns + round(t_end * 1e9), t0_wall + t_end), p.audio_s, g))
        return out

    def state_dict(self) -> dict[str, Any]:
        """Per-stream buffers and planners; windows still pending are re-cut from nothing (they are lost)."""
        return {"streams": {name: s.state_dict() for name, s in self.streams.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, saved in state["streams"].items():
            self.streams[name] = StreamWindows(self.config, (0, 0.0))
            self.streams[name].load_state_dict(saved)


NODE = SegmentationNode
