"""The diarisation chain for one stream: rolling windows -> clustering -> aggregation -> turns (-> refinement).

The same objects serve the live graph (one window at a time as audio arrives) and ``stream diarize`` on files
(windows batched through the models because all audio is there). Only the model calls are batched; every
stateful step sees the windows in the same order with the same inputs, so the file output equals the live one.

Time base: window k (k = 0, 1, ...) ends at audio time (k + 1) * step and starts ``duration`` earlier; the
stream is padded with silence before time 0, so the first output comes after one step, not after a whole window.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from nodes.diarization.aggregation import DelayedAggregation, WindowGeometry
from nodes.diarization.clustering import ClusteringConfig, OnlineClustering
from nodes.diarization.refine import RefineConfig, WindowRecord, cluster, refine
from nodes.diarization.stitching import EmbeddingPlanner, Plan
from nodes.diarization.turns import TurnConfig, TurnEdge, TurnTracker
from stream.rttm import Turn

SAMPLE_RATE = 16000  # Hz, what the segmentation and embedding models take


@dataclass(frozen=True)
class DiarizationConfig:
    """Every knob of the chain, grouped per step. Defaults tuned on the 12 AMI clips (bench/RESULTS.md)."""

    geometry: WindowGeometry = field(default_factory=WindowGeometry)
    clustering: ClusteringConfig = field(default_factory=ClusteringConfig)
    turns: TurnConfig = field(default_factory=TurnConfig)
    refine: RefineConfig = field(default_factory=RefineConfig)
    overlap_weight: float = 0.1  # [0, 1] pooling weight of overlapped frames in a local speaker's embedding
    embed_every: int = 1  # >= 1, embed at least every this many windows (1: every window, as diart; 2 trades
    #   2 points of online DER on AMI for ~40 % less CAM++ time, see bench/RESULTS.md)


class WindowBuffer:
    """Audio in (any block size) -> complete rolling windows out, silence-padded before time 0.

    ``flush`` pads the end with silence up to the next whole step, so the last window ends at or after the
    last sample.
    """

    def __init__(self, geometry: WindowGeometry) -> None:
        self.window = round(geometry.duration * SAMPLE_RATE)
        self.step = round(geometry.step * SAMPLE_RATE)
        self.reset()

    def reset(self) -> None:
        self.buffer = np.zeros(self.window - self.step, np.float32)
        self.samples = 0  # real samples pushed so far

    def padding(self, index: int) -> int:
        """Samples of silence before time 0 at the start of window ``index``."""
        return max(0, self.window - (index + 1) * self.step)

    def push(self, samples: np.ndarray) -> list[np.ndarray]:
        self.samples += len(samples)
        self.buffer = np.concatenate([self.buffer, np.asarray(samples, np.float32)])
        out = []
        while len(self.buffer) >= self.window:
            out.append(self.buffer[: self.window].copy())
            self.buffer = self.buffer[self.step:]
        return out

    def flush(self) -> list[np.ndarray]:
        pending = len(self.buffer) - (self.window - self.step)
        if pending <= 0:
            return []
        windows = self.push(np.zeros(self.step - pending, np.float32))
        self.samples -= self.step - pending  # silence, not stream audio
        return windows

    @property
    def duration(self) -> float:
        """Seconds of real audio pushed."""
        return self.samples / SAMPLE_RATE


@dataclass(frozen=True)
class Step:
    """What one window produced: frame probabilities from ``t0`` (s) for every global speaker, and turn edges."""

    t0: float
    probs: np.ndarray  # [frames, speakers]
    edges: list[TurnEdge]


class OnlineDiarizer:
    """Stateful chain, per window: ``plan(activity)`` says whether to embed, then
    ``__call__(activity[frames_per_window, 3], embeddings[3, 2, dim] | None, plan) -> Step`` (per local speaker,
    the whole-window and the tail embedding, `nodes.diarization.windows`).

    ``labels`` names global speaker k. With ``keep_windows`` the windows are kept for the refinement pass
    (a few kB per window).
    """

    def __init__(self, config: DiarizationConfig, enrolled: dict[str, np.ndarray] | None = None,
                 keep_windows: bool = True) -> None:
        self.config = config
        self.keep_windows = keep_windows
        online = replace(config.refine, method="ahc")  # re-clustering every few seconds: AHC, cheap and no model
        self.clustering = OnlineClustering(config.clustering, enrolled, lambda emb: cluster(emb, online))
        self.aggregation = DelayedAggregation(config.geometry)
        self.tracker = TurnTracker(config.turns, config.geometry.resolution)
        self.planner = EmbeddingPlanner(config.embed_every, config.clustering.tau_active,
                                        config.geometry.frames_per_step, config.geometry.resolution)
        self.reset()

    def reset(self) -> None:
        self.clustering.reset()
        self.aggregation.reset()
        self.tracker.reset()
        self.planner.reset()
        self.windows = 0
        self.records: list[WindowRecord] = []

    @property
    def labels(self) -> list[str]:
        return self.clustering.labels

    def plan(self, activity: np.ndarray) -> Plan:
        """Whether this window (the next one to be called) needs embeddings; call once per window, in order."""
        return self.planner(activity)

    def __call__(self, activity: np.ndarray, embeddings: np.ndarray | None, plan: Plan) -> Step:
        g = self.config.geometry
        mapping = self.clustering(activity, embeddings[:, 0] if plan.embed else None, plan.continues)
        moves = (self.clustering.tail_moves(activity, embeddings[:, 1], mapping, g.tail_frames, g.resolution)
                 if plan.embed else {})
        global_activity = np.zeros((g.frames_per_window, self.clustering.num_speakers))
        for local, k in mapping.items():
            global_activity[:, k] = activity[:, local]
        for local, k in moves.items():  # k holds no other local speaker of this window
            global_activity[-g.tail_frames:, k] = activity[-g.tail_frames:, local]
            global_activity[-g.tail_frames:, mapping[local]] = 0.0
        probs = self.aggregation(global_activity)
        first = (self.windows + 1 - g.latency_steps) * g.frames_per_step  # grid index of probs[0]
        if self.keep_windows:
            self.records.append(WindowRecord((self.windows + 1) * g.frames_per_step - g.frames_per_window,
                                             activity.astype(np.float32),
                                             embeddings.astype(np.float32) if plan.embed else None, plan.continues,
                                             dict(mapping)))
        self.windows += 1
        return self._track(probs, first)

    def _track(self, probs: np.ndarray, first: int) -> Step:
        skip = max(0, -first)  # frames before time 0 (silence padding) are never output
        t0 = (first + skip) * self.config.geometry.resolution
        return Step(t0, probs[skip:], self.tracker(probs[skip:], t0))

    def finish(self, t_end: float) -> Step:
        """End of stream at audio time ``t_end`` (s): emit the frames still pending and close open turns."""
        g = self.config.geometry
        probs = self.aggregation.flush()
        first = (self.windows + 1 - g.latency_steps) * g.frames_per_step
        keep = max(0, round(t_end / g.resolution) - first)
        step = self._track(probs[:keep], first)
        return Step(step.t0, step.probs, step.edges + self.tracker.close_all(t_end))

    def turns(self) -> list[Turn]:
        """Online turns closed so far and not taken (all of them after ``finish`` when nothing took any)."""
        return self.tracker.turns(self.labels)

    def take_turns(self) -> list[Turn]:
        """Closed turns whose place in start order is final, removed from the state (`TurnTracker.take`): labels are
        fixed at creation, so a turn taken now reads as it would at the end of the stream."""
        return self.tracker.take(self.labels)

    def refined_turns(self, t_end: float) -> list[Turn]:
        """The refinement pass over every kept window: re-clustered, re-aggregated, re-segmented turns.

        Refined speakers take the label (name included) of the online speaker they overlap most; one without an
        online counterpart gets the next unused SPEAKER_k.
        """
        g = self.config.geometry
        frames = round(t_end / g.resolution)
        active, sources = refine(self.records, frames, self.config.clustering.tau_active, self.config.refine,
                                  g.resolution)
        fresh = iter(f"SPEAKER_{n}" for n in range(self.clustering.anonymous, self.clustering.anonymous + len(sources)))
        labels = [self.labels[k] if k >= 0 else next(fresh) for k in sources]
        turns = []
        for k in range(active.shape[1]):
            edges = np.flatnonzero(np.diff(np.r_[0, active[:, k].astype(int), 0]))
            turns += [Turn(s * g.resolution, min(e * g.resolution, t_end), labels[k])
                      for s, e in zip(edges[::2], edges[1::2])]
        return sorted(turns)

    def state_dict(self) -> dict[str, Any]:
        """Clustering, aggregation and open turns: a restarted node continues with the same labels."""
        return {"windows": self.windows, "planner": self.planner.state_dict(),
                "clustering": self.clustering.state_dict(),
                "aggregation": self.aggregation.state_dict(), "turns": self.tracker.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.windows = int(state["windows"])
        self.planner.load_state_dict(state["planner"])
        self.clustering.load_state_dict(state["clustering"])
        self.aggregation.load_state_dict(state["aggregation"])
        self.tracker.load_state_dict(state["turns"])
