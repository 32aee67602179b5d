"""The model half of diarisation: rolling windows of audio -> local speaker activity + one embedding per local speaker.

For a batch of windows (one or a few in the live graph, many in file mode) this runs segmentation-3.0 and puts
its frames on the diarisation frame grid (``WindowGeometry.resolution`` = 20 ms, which is also CAM++'s trunk frame
rate), then embeds each local speaker with CAM++ by weighted statistics pooling.

The CAM++ trunk is shared between windows. Consecutive windows differ by one step of audio, so each window sends
only its newest step through the trunk, with ``context_s`` of earlier audio as left context and none on the right,
and a per-stream ``TrunkRing`` keeps the trunk frames of the window's steps; a local speaker's embedding pools the
ring's frames weighted by its activity (frames where several speakers talk get ``overlap_weight``). The fbank is
mean-normalised with the mean over the ring's steps, i.e. the window's. The trunk's context gates see the short
chunk instead of the whole window, so embeddings differ from a per-window trunk run; on the 12 AMI clips this
scores as well or better (bench/RESULTS.md, "Diarisation"), for a trunk cost that no longer grows with the window:
0.8 s of audio per 0.5 s step instead of the whole window. The 0.3 s of left context is the shortest that
loses nothing on AMI (DER online at 0.5 s / at 5 s / refined, %: 33.4 / 29.7 / 29.3 with 0.25 s, 32.6 / 28.9 /
28.7 with 0.3 s, 32.5 / 28.4 / 29.5 with 0.5 s, 33.1 / 29.4 / 29.0 with 1 s, which costs twice the trunk time).

Each local speaker gets two embeddings from the same trunk frames: one pooled over the whole window and one over
its last ``TAIL_S`` (`aggregation.py`) only. At a turn change segmentation-3.0 often lets the newcomer's first second continue the
local speaker of someone who spoke earlier in the window; the whole-window embedding then names the earlier voice,
and at 0.5 s latency that second is output under the wrong label. The tail embedding lets the clustering hand the
tail to the voice it sounds like (`OnlineClustering.tail_moves`); it costs one more pooling per speaker, no trunk.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nodes.diarization.aggregation import WindowGeometry
from nodes.diarization.confidence import drop_unsure
from nodes.embedding.campplus import CampplusConfig, frame_features, pooled_embedding
from nodes.embedding.layers import weighted_stats_many
from nodes.features.kaldi import FbankConfig, fbank
from nodes.segmentation.model import FRAME_DURATION, FRAME_STEP, SAMPLE_RATE, num_frames
from nodes.segmentation.segment import segment, segment_rolling

Params = dict[str, Any]
PCM_SCALE = 32768.0  # CAM++ was trained on Kaldi fbank of int16-scaled audio
CHANNELS = 512  # CAM++ trunk output channels
FBANK = FbankConfig()


def interpolation_matrix(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """[len(dst), len(src)] weights of linear interpolation from points ``src`` to ``dst`` (clamped at the ends)."""
    return np.stack([np.interp(dst, src, np.eye(len(src))[i]) for i in range(len(src))], axis=1)


def pooling_weights(activity: np.ndarray, overlap_weight: float) -> np.ndarray:
    """[..., frames, speakers] activity -> the same shape of pooling weights, down-weighting overlapped frames."""
    overlapped = (activity > 0.5).sum(axis=-1, keepdims=True) > 1
    return activity * np.where(overlapped, overlap_weight, 1.0)


class TrunkRing:
    """Per-stream state of the shared trunk: the trunk frames [C, window frames] of the current window's steps
    (oldest first) and each step's fbank sum (for the window's mean). ``valid`` counts the steps filled since the
    stream began; older frames are never pooled. Checkpointed with the stream (~0.8 MB at 8 s windows), so a
    restarted node embeds exactly as before."""

    def __init__(self, steps: int, frames_per_step: int) -> None:
        self.steps, self.frames_per_step = steps, frames_per_step
        self.frames = np.zeros((CHANNELS, steps * frames_per_step), np.float32)
        self.sums = np.zeros((steps, FBANK.num_mel_bins))
        self.counts = np.zeros(steps)
        self.valid = 0

    def add_fbank(self, newest: np.ndarray) -> np.ndarray:
        """Account the newest step's fbank frames [n, mels]; returns the window's fbank mean [mels]."""
        self.sums = np.roll(self.sums, -1, axis=0)
        self.counts = np.roll(self.counts, -1)
        self.sums[-1], self.counts[-1] = newest.sum(axis=0), len(newest)
        return self.sums.sum(axis=0) / max(self.counts.sum(), 1.0)

    def push(self, frames: np.ndarray) -> None:
        """The newest step's trunk frames [C, frames_per_step]."""
        self.frames = np.concatenate([self.frames[:, self.frames_per_step:], frames], axis=1)
        self.valid = min(self.valid + 1, self.steps)

    def state_dict(self) -> dict[str, Any]:
        return {"frames": self.frames.copy(), "sums": self.sums.copy(), "counts": self.counts.copy(),
                "valid": self.valid}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.frames = np.asarray(state["frames"], np.float32).reshape(self.frames.shape).copy()
        self.sums = np.asarray(state["sums"], np.float64).reshape(self.sums.shape).copy()
        self.counts = np.asarray(state["counts"], np.float64).reshape(self.counts.shape).copy()
        self.valid = int(state["valid"])

    def mask(self) -> np.ndarray:
        """[window frames] 1 where the frame belongs to a step filled since the stream began, else 0."""
        m = np.zeros(self.frames.shape[1], np.float32)
        m[(self.steps - self.valid) * self.frames_per_step:] = 1.0
        return m


@partial(jax.jit, static_argnums=(3, 4))
def _step_frames(params: Params, feats: jax.Array, lengths: jax.Array, keep: int, cfg: CampplusConfig) -> jax.Array:
    """fbank chunks [B, T, 80] (valid frames first) -> the trunk frames [B, C, keep] ending each chunk's valid part
    (indices before a short chunk's start are clamped to its first frame)."""
    x = frame_features(params, feats, lengths, cfg)  # [B, C, ceil(T/2)]
    index = jnp.maximum((lengths[:, None] + 1) // 2 - keep + jnp.arange(keep)[None, :], 0)
    return jnp.take_along_axis(x, index[:, None, :], axis=2)


@jax.jit
def _pool(params: Params, frames: jax.Array, weights: jax.Array) -> jax.Array:
    """Trunk frames [B, C, T] + pooling weights [B, S, T] -> [B, S, 192]: one weighted pooling per speaker."""
    b, s, _ = weights.shape
    mean, std = weighted_stats_many(frames, weights)
    return pooled_embedding(params, mean.reshape(b * s, -1), std.reshape(b * s, -1)).reshape(b, s, -1)


class WindowAnalyzer:
    """Models over batches of windows: ``segment`` every window, ``embed`` every window's newest step.

    Each method compiles once per batch size: the live graph pads to powers of two, file mode to a fixed batch of
    ``consecutive`` windows. (Baking CAM++'s weights into the compiled trunk as constants saves ~10 % of a trunk
    call at this batch shape but adds ~200 MB of RSS per compiled shape: not done.)
    """

    def __init__(self, seg_params: Params, emb_params: Params, geometry: WindowGeometry,
                 overlap_weight: float = 0.1, context_s: float = 0.3) -> None:
        self.geometry = geometry
        self.tail = np.zeros(geometry.frames_per_window, np.float32)  # pooling mask of the tail embedding
        self.tail[-geometry.tail_frames:] = 1.0
        self.overlap_weight = overlap_weight
        self.seg_params = jax.device_put(seg_params)  # one transfer: per-leaf jnp.asarray took ~1 s
        self.emb_params = jax.device_put(emb_params)
        self.samples = round(geometry.duration * SAMPLE_RATE)
        self.step_samples = round(geometry.step * SAMPLE_RATE)
        shift = round(FBANK.frame_shift_ms * SAMPLE_RATE / 1000)
        length = round(FBANK.frame_length_ms * SAMPLE_RATE / 1000)
        # the chunk ends at the window's end; its fbank frames tile [context | step] at the 10 ms shift
        self.chunk_samples = min(self.samples, round((context_s + geometry.step) * SAMPLE_RATE) + length - shift)
        self.chunk_frames = 1 + (self.chunk_samples - length) // shift
        self.step_fbank = round(geometry.step * SAMPLE_RATE) // shift  # fbank frames of the newest step
        seg_centres = np.arange(num_frames(self.samples)) * FRAME_STEP + FRAME_DURATION / 2
        grid_centres = (np.arange(geometry.frames_per_window) + 0.5) * geometry.resolution
        self.to_grid = interpolation_matrix(seg_centres, grid_centres).astype(np.float32)

    def new_ring(self) -> TrunkRing:
        return TrunkRing(self.geometry.steps_per_window, self.geometry.frames_per_step)

    def segment(self, windows: np.ndarray, consecutive: bool = False) -> np.ndarray:
        """[B, samples] -> local speaker activity on the grid [B, frames_per_window, 3] (0/1 per model frame,
        interpolated), without the local speakers the model is unsure anybody speaks for (``drop_unsure``).

        ``consecutive``: window b + 1 starts one step after window b in one stream (file mode), so SincNet's
        filter bank runs once over the audio they span (`segment_rolling`).
        """
        if consecutive:
            span = np.concatenate([windows[0], *(w[-self.step_samples:] for w in windows[1:])])
            activity, log_probs = segment_rolling(self.seg_params, span, self.samples, self.step_samples)
        else:
            activity, log_probs = segment(self.seg_params, windows)
        return np.matmul(self.to_grid, drop_unsure(activity, log_probs))  # [grid, model] @ [B, model, 3]

    def embed(self, windows: np.ndarray, activity: np.ndarray, paddings: list[int], rings: list[TrunkRing],
              wanted: list[bool]) -> list[np.ndarray | None]:
        """Push the newest step of each window through the CAM++ trunk into its stream's ring, in order, and pool
        [3, 2, 192] embeddings (local speaker, whole window / its tail; NaN for a speaker not active
        there) for the windows ``wanted``.

        windows: [B, samples] (B = the compiled batch; only the first ``len(rings)`` are real); activity: grid
        activity of the real ones; ``paddings[i]``: samples of silence before the stream began at the start of
        window i (cut from the trunk's input). Windows of one stream must come in order.
        """
        n, batch = len(rings), len(windows)
        feats = np.zeros((batch, self.chunk_frames, FBANK.num_mel_bins), np.float32)
        lengths = np.full(batch, self.chunk_frames, np.int32)
        for i, (window, pad, ring) in enumerate(zip(windows, paddings, rings)):
            start = max(self.samples - self.chunk_samples, pad)
            f = fbank(window[start:].astype(np.float64) * PCM_SCALE, FBANK)
            mean = ring.add_fbank(f[-self.step_fbank:])
            feats[i, : len(f)], lengths[i] = f - mean, len(f)
        newest = np.asarray(_step_frames(self.emb_params, jnp.asarray(feats), jnp.asarray(lengths),
                                         self.geometry.frames_per_step, CampplusConfig()))
        frames = np.zeros((batch, CHANNELS, self.geometry.frames_per_window), np.float32)
        weights = np.zeros((batch, 6, self.geometry.frames_per_window), np.float32)  # 3 whole, then 3 tails
        todo = []
        for i, ring in enumerate(rings):
            ring.push(newest[i])
            if wanted[i]:
                j = len(todo)
                frames[j] = ring.frames
                whole = pooling_weights(activity[i], self.overlap_weight).T * ring.mask()
                weights[j] = np.concatenate([whole, whole * self.tail])
                todo.append(i)
        out: list[np.ndarray | None] = [None] * n
        if todo:
            emb = np.asarray(_pool(self.emb_params, jnp.asarray(frames), jnp.asarray(weights)))
            for j, i in enumerate(todo):
                active = (weights[j].max(axis=1) > 0)[:, None]
                out[i] = np.where(active, emb[j], np.nan).reshape(2, 3, -1).transpose(1, 0, 2)
        return out

    def warmup(self, batch: int) -> None:
        """Compile segmentation, trunk and pooling for ``batch`` windows (no compile later while live)."""
        silence = np.zeros((batch, self.samples), np.float32)
        activity = self.segment(silence)
        rings = [self.new_ring() for _ in range(batch)]
        self.embed(silence, activity, [0] * batch, rings, [True] * batch)
