"""Diarization node: "window" messages (from the `segmentation` node) -> global speakers, turns and events.

The light half of the meeting graph: per stream an `OnlineDiarizer` assigns each window's local speakers to
global ones, aggregates at `latency` and tracks turns; every turn edge becomes a `speaker.active` event and every
closed turn a `speaker.turn` event (stream/schemas/). Its state is checkpointed by the runtime, so a restarted
node keeps every label. Windows lost while it was down are replaced by silence (open turns close at the gap;
stitched speakers get their labels back at the next embedded window, within `embed_every` windows).

Event header `t_capture_ns` = capture time of the audio at the edge (a turn's end), so the sinks' latency
histogram measures how long after a turn ended it was announced: about `latency` + the window step + compute.
It writes `<rttm_dir>/<stream>-<date>-<time>.rttm` (the stream's first window, local time: a new file per run, the
same after a restart) as turns close, each once its place in start order is final (`TurnTracker.take`), and
creates it at end of stream if no turn closed: complete at end of stream, the same turns in the same order as
`stream diarize --latency L` gives (the RTTM uri is the stream). Its state keeps a byte count of the file, not the
turns (`nodes.diarization.rttm_file`: a restart truncates lines written after the checkpoint), so it stays bounded
over weeks of stream time; without `rttm_dir` closed turns go out as events only.

    [[nodes]]
    name = "diarization"
    kind = "diarization"
    inputs = ["segmentation"]
    config = { latency = 0.5, rttm_dir = "out" }
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from nodes.diarization.events import edge_events
from nodes.diarization.pipeline import DiarizationConfig, OnlineDiarizer, Step
from nodes.diarization.rttm_file import RttmFile
from nodes.diarization.stitching import Plan
from nodes.segmentation.node import read_window
from stream.errors import MessageError
from stream.message import Message
from stream.metrics import SINK_ERRORS
from stream.node import Node

log = logging.getLogger(__name__)

_DEFAULTS = DiarizationConfig()
MAX_GAP_S = 300.0  # s of lost windows filled with silence; a window further ahead is refused (never legit in a graph)


@dataclass(frozen=True)
class DiarizationNodeConfig:
    """duration, step and tau_active must match the segmentation node's."""

    latency: float = _DEFAULTS.geometry.latency  # s, a multiple of step in [step, duration]: output delay vs accuracy
    duration: float = _DEFAULTS.geometry.duration  # s per window
    step: float = _DEFAULTS.geometry.step  # s between windows
    tau_active: float = _DEFAULTS.clustering.tau_active  # [0, 1] local speaker active from this probability
    rho_update: float = _DEFAULTS.clustering.rho_update  # [0, 1] min mean activity to move a centroid
    delta_new: float = _DEFAULTS.clustering.delta_new  # [0, 2] cosine distance that opens a new speaker
    rho_new: float = _DEFAULTS.clustering.rho_new  # [0, 1] min mean activity for a voice to open a new speaker
    max_speakers: int = _DEFAULTS.clustering.max_speakers  # >= 1 per stream, enrolled included
    onset: float = _DEFAULTS.turns.onset  # [0, 1] probability that opens a turn
    offset: float = _DEFAULTS.turns.offset  # [0, onset] probability below which a turn closes
    min_duration_on: float = _DEFAULTS.turns.min_duration_on  # s >= 0: shorter turns are dropped
    min_duration_off: float = _DEFAULTS.turns.min_duration_off  # s >= 0: shorter pauses do not end a turn
    enrolled: str = ""  # enrolment store folder (`stream enroll`): its speakers get their names; "" = none
    rttm_dir: str = ""  # write <rttm_dir>/<stream>-<date>-<time>.rttm as turns close; "" = no file

    def __post_init__(self) -> None:
        self.diarization  # noqa: B018 - builds the chain's configs, which validate every range (ConfigError)

    @property
    def diarization(self) -> DiarizationConfig:
        d = _DEFAULTS
        return replace(
            d, geometry=replace(d.geometry, latency=self.latency, duration=self.duration, step=self.step),
            clustering=replace(d.clustering, tau_active=self.tau_active, rho_update=self.rho_update,
                               delta_new=self.delta_new, rho_new=self.rho_new, max_speakers=self.max_speakers),
            turns=replace(d.turns, onset=self.onset, offset=self.offset, min_duration_on=self.min_duration_on,
                          min_duration_off=self.min_duration_off))


@dataclass
class StreamDiarization:
    """One stream's chain and time base: audio time t was captured at t0 + t (monotonic ns, Unix s)."""

    diarizer: OnlineDiarizer
    t0_ns: int = 0
    t0_wall: float = 0.0
    audio_s: float = 0.0  # s of audio the stream had when its latest window was cut
    rttm: RttmFile | None = None  # with rttm_dir, from the first window on
    failing: bool = False  # the latest RTTM write failed (logged once per spell, every failure counted)


def rttm_name(stream: str, t0_wall: float) -> str:
    """`meeting-20261204-171500.rttm`: the stream id and its start (local time)."""
    return f"{stream}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(t0_wall))}.rttm"


class DiarizationNode(Node[DiarizationNodeConfig]):
    Config = DiarizationNodeConfig
    accepts = ("window",)

    def __init__(self, config: DiarizationNodeConfig | None = None, name: str | None = None) -> None:
        super().__init__(config, name)
        self.chain = self.config.diarization
        self.streams: dict[str, StreamDiarization] = {}
        self._restored: dict[str, Any] = {}

    async def setup(self) -> None:
        self.enrolled = None
        if self.config.enrolled:
            from nodes.speakers.store import SpeakerStore

            self.enrolled = SpeakerStore.open(Path(self.config.enrolled), "campplus").centroids()
        for name, saved in self._restored.items():
            s = self._stream(name)
            s.diarizer.load_state_dict(saved["diarizer"])
            s.t0_ns, s.t0_wall, s.audio_s = int(saved["t0_ns"]), float(saved["t0_wall"]), float(saved["audio_s"])
            if self.config.rttm_dir and saved.get("rttm"):  # absent: a checkpoint from before issue 22
                path = Path(self.config.rttm_dir) / Path(saved["rttm"]["name"]).name  # in rttm_dir, whatever it says
                s.rttm = RttmFile.restored(path, name, saved["rttm"])

    def _stream(self, name: str) -> StreamDiarization:
        if name not in self.streams:
            self.streams[name] = StreamDiarization(OnlineDiarizer(self.chain, self.enrolled, keep_windows=False))
        return self.streams[name]

    async def process(self, msg: Message, port: str = "") -> list[Message]:
        activity, embeddings, plan = read_window(msg, self.chain.geometry)
        h, g = msg.header, self.chain.geometry
        k, expected = h.meta["window"], self.streams[h.stream].diarizer.windows if h.stream in self.streams else 0
        if k < expected:
            raise MessageError("order", f"stream {h.stream}: window {k} arrived after window {expected - 1}")
        if (k - expected) * g.step > MAX_GAP_S:
            raise MessageError("order", f"stream {h.stream}: window {k} is {k - expected} windows ahead of the next "
                                        f"expected ({expected}); at most {MAX_GAP_S:.0f} s are filled with silence")
        t_end = (k + 1) * g.step
        if not t_end - g.duration <= h.meta["audio_s"] <= t_end + g.duration + 1.0:  # blocks are <= 1 s
            raise MessageError("meta", f"audio_s={h.meta['audio_s']} s does not fit window {k} (ends at {t_end} s)")
        s = self._stream(h.stream)  # only now: a refused window leaves no state behind
        s.t0_ns, s.t0_wall = h.t_capture_ns - round(t_end * 1e9), h.t_wall - t_end
        s.audio_s = float(h.meta["audio_s"])
        if self.config.rttm_dir and s.rttm is None:
            s.rttm = RttmFile(Path(self.config.rttm_dir) / rttm_name(h.stream, s.t0_wall), h.stream)
        out = []
        while s.diarizer.windows < k:  # windows lost upstream or while this node restarted: silence
            silence = np.zeros_like(activity)
            out += self._events(h.stream, s.diarizer(silence, None, Plan(False, {})))
        out += self._events(h.stream, s.diarizer(activity, embeddings, plan))
        self._write_rttm(s, end=False)
        return out

    async def close(self) -> list[Message]:
        out = []
        for name, s in self.streams.items():
            out += self._events(name, s.diarizer.finish(s.audio_s))
            self._write_rttm(s, end=True)
        return out

    def _write_rttm(self, s: StreamDiarization, end: bool) -> None:
        """Append the stream's turns whose place is final (without rttm_dir they are dropped: they went out as
        events). A write error (full disk, a folder made read-only) is counted (`stream_sink_errors_total{sink=
        "rttm"}`), logged once per spell and at end of stream, and the turns are kept for the next write: the other
        streams' files are still written, and the turns also went out as speaker.turn events."""
        turns = s.diarizer.take_turns()
        if s.rttm is None:
            return
        try:
            s.rttm.append(turns, create=end)
        except OSError as exc:
            SINK_ERRORS.labels("rttm").inc()
            if end or not s.failing:
                log.error("%s: cannot write %s (%s); %d turns not written yet (kept, and sent as speaker.turn "
                          "events): free space or set rttm_dir to a writable folder", self.name, s.rttm.path,
                          exc.strerror or exc, len(s.rttm.unwritten))
            s.failing = True
        else:
            s.failing = False

    def _events(self, stream: str, step: Step) -> list[Message]:
        s, out = self.streams[stream], []
        for edge in step.edges:
            t_ns = s.t0_ns + round(edge.t * 1e9)
            for event in edge_events(edge, s.diarizer.labels[edge.speaker], stream, s.t0_wall + edge.t,
                                     time.time(), self.name):
                out.append(Message.new(stream, "event", np.zeros(0, np.uint8), sr=0, t_capture_ns=t_ns,
                                       t_wall=s.t0_wall + edge.t, meta=event))
        return out

    def state_dict(self) -> dict[str, Any]:
        return {name: {"diarizer": s.diarizer.state_dict(), "t0_ns": s.t0_ns, "t0_wall": s.t0_wall,
                       "audio_s": s.audio_s,
                       "rttm": None if s.rttm is None else {"name": s.rttm.path.name, **s.rttm.state_dict()}}
                for name, s in self.streams.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._restored = state  # applied in setup, once the enrolled speakers are loaded


NODE = DiarizationNode
