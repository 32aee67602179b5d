"""Segmentation node: pcm of one or many streams -> per rolling window, local speaker activity and embeddings.

The heavy half of the meeting graph (segmentation-3.0 every window, CAM++ when a new voice appears or every
`embed_every` windows, via `nodes.diarization.windows.WindowAnalyzer`); the light half, the `diarization` node,
turns its "window" messages into global speakers and turns. One node serves every stream wired into it: state
is per stream id, and windows that are ready at the same time (several streams, or a backlog) share one model
call, padded to a power-of-two batch so only `log2(max_batch) + 1` shapes are ever compiled (all at `setup`).

Output, one message per window, kind "window", sr 0 (axis 0 is not time):
- data float32 [3 local speakers, frames_per_window (+ 2 x 192 embedding dims when the window was embedded: the
  whole-window embedding, then the tail embedding, `nodes.diarization.windows`)];
- `t_capture_ns`/`t_wall`: capture time of the window's end (audio time (k + 1) * step);

- meta: `window` k, `audio_s` (s of audio received so far on the stream), `continues` ([[local, previous local]]
  of speakers stitched to the previous window), `step`, `duration` (s, so the consumer can check geometries).

Audio time comes from the capture stamps, not from counting blocks: a block stamped later than the samples
received so far reach (audio lost upstream: drops, or this node down and restarted from its checkpoint) is
preceded by silence for the missing span (up to `FILL_S`; longer spans are skipped without model calls), so the
lost audio is a gap in the turns and later windows keep their true times.
    [[nodes]]
    name = "segmentation"
    kind = "segmentation"
    inputs = ["capture"]              # one or many capture nodes (distinct stream ids)
    config = { max_batch = 8, max_wait_ms = 100.0 }   # weights = "seg.npz": fine-tuned segmentation
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

log = logging.getLogger(__name__)

_DEFAULTS = DiarizationConfig()
FILL_S = 2.0  # s: a shorter loss is filled with silence through the models, a longer one is skipped over


def mono_pcm(msg: Message, rate: int = SAMPLE_RATE) -> np.ndarray:
    """The real samples of a float32 pcm message at `rate` Hz, down-mixed to mono (padding of a last block cut);
    MessageError for anything else (`stream.pcm`)."""
    return mono(msg, rate)


def window_message(stream: str, k: int, activity: np.ndarray, embeddings: np.ndarray | None, plan: Plan,
                   t_end: tuple[int, float], audio_s: float, geometry: WindowGeometry) -> Message:
    """A "window" message (layout in the module docstring); `t_end` = (capture ns, Unix s) of the window end."""
    data = activity.T if embeddings is None else np.concatenate([activity.T, embeddings.reshape(NUM_SPEAKERS, -1)],
                                                                axis=1)
    meta = {"window": k, "audio_s": audio_s, "continues": [[int(a), int(b)] for a, b in plan.continues.items()],
            "step": geometry.step, "duration": geometry.duration}
    return Message.new(stream, "window", data.astype(np.float32), sr=0, t_capture_ns=t_end[0], t_wall=t_end[1],
                       meta=meta)


def read_window(msg: Message, geometry: WindowGeometry) -> tuple[np.ndarray, np.ndarray | None, Plan]:
    """(activity [frames, 3], embeddings [3, 2, dim] or None, plan) of a "window" message made for `geometry`."""
    h, frames, dim = msg.header, geometry.frames_per_window, CampplusConfig().embedding_size
    if h.kind != "window" or h.dtype != "float32" or len(h.shape) != 2 or h.shape[0] != NUM_SPEAKERS \
            or h.shape[1] not in (frames, frames + 2 * dim):
        raise MessageError("input", f"expected a float32 'window' message [{NUM_SPEAKERS}, {frames} (+ 2 x {dim})], "
                                    f"got {h.kind} {h.dtype} {list(h.shape)}")
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
    embeddings = msg.data[:, frames:].reshape(NUM_SPEAKERS, 2, dim) if h.shape[1] > frames else None
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
    weights: str = ""  # fine-tuned weights file (`stream train-segmentation --out`); "" = segmentation-3.0

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
        g = config.geometry
        self.buffer = WindowBuffer(g)
        self.ring = TrunkRing(g.steps_per_window, g.frames_per_step)
        self.planner = EmbeddingPlanner(config.embed_every, config.tau_active, g.frames_per_step, g.resolution)
        self.windows = 0  # windows cut so far
        self.t0 = t0  # (capture ns, Unix s) of the stream's first sample

    def skip(self, lost: int) -> None:
        """Jump over `lost` samples without model calls: the windows that would hold them are never cut (the
        diarization node takes missing windows as silence); the buffer restarts from silence and the embedding
        state starts over, as at the stream's start."""
        b = self.buffer
        b.samples += lost
        b.buffer = np.zeros(b.window - b.step + b.samples % b.step, np.float32)
        self.windows = b.samples // b.step
        self.ring = TrunkRing(self.ring.steps, self.ring.frames_per_step)
        self.planner.reset()

    def missing(self, t_capture_ns: int, frames: int) -> int:
        """Samples lost before a block of `frames` stamped `t_capture_ns` (0 unless at least half a block)."""
        due = round((t_capture_ns - self.t0[0]) * SAMPLE_RATE / 1e9)
        lost = due - self.buffer.samples
        return lost if 2 * lost >= frames else 0

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
        from nodes.segmentation.weights import load_segmentation
        from stream.models import load_params

        use_compile_cache()
        keep_freed_memory()  # model calls reuse heap pages instead of page-faulting fresh mmaps
        c = self.config
        self.analyzer = WindowAnalyzer(load_segmentation(c.weights), load_params("campplus"), c.geometry,
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
        lost = s.missing(h.t_capture_ns, len(samples))
        if lost:
            log.warning("stream %s: %.2f s of audio lost after %.2f s (upstream drops or a restart); it becomes "
                        "silence, so later turns keep their times", h.stream, lost / SAMPLE_RATE, s.buffer.duration)
            if lost <= FILL_S * SAMPLE_RATE:
                self._cut(h.stream, s.buffer.push(np.zeros(lost, np.float32)))
            else:
                s.skip(lost)
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
