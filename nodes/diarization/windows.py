"""The model half of diarisation: rolling windows of audio -> local speaker activity + one embedding per local speaker.

For a batch of windows (one in the live graph, many in file mode) this runs segmentation-3.0, puts its frames on
the diarisation frame grid (``WindowGeometry.resolution``), and embeds each local speaker with CAM++ by weighted
statistics pooling over the window: the CAM++ trunk runs once per window and each speaker only re-pools it.
Frames where the segmentation hears several speakers get ``overlap_weight`` in the pooling, so a speaker's
embedding is made mostly of frames where they speak alone.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nodes.diarization.aggregation import WindowGeometry
from nodes.embedding.campplus import CampplusConfig, frame_features, pooled_embedding
from nodes.embedding.layers import weighted_stats
from nodes.features.kaldi import FbankConfig, fbank
from nodes.segmentation.model import FRAME_DURATION, FRAME_STEP, SAMPLE_RATE, num_frames
from nodes.segmentation.segment import segment

Params = dict[str, Any]
PCM_SCALE = 32768.0  # CAM++ was trained on Kaldi fbank of int16-scaled audio


def interpolation_matrix(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """[len(dst), len(src)] weights of linear interpolation from points ``src`` to ``dst`` (clamped at the ends)."""
    return np.stack([np.interp(dst, src, np.eye(len(src))[i]) for i in range(len(src))], axis=1)


def pooling_weights(activity: np.ndarray, overlap_weight: float) -> np.ndarray:
    """[..., frames, speakers] activity -> the same shape of pooling weights, down-weighting overlapped frames."""
    overlapped = (activity > 0.5).sum(axis=-1, keepdims=True) > 1
    return activity * np.where(overlapped, overlap_weight, 1.0)


@partial(jax.jit, static_argnums=4)
def _embed_speakers(params: Params, feats: jax.Array, lengths: jax.Array, weights: jax.Array,
                    cfg: CampplusConfig) -> jax.Array:
    """fbank [B, T, 80] (valid frames first), lengths [B], weights [B, S, T] -> [B, S, 192]: one trunk, S poolings."""
    b = feats.shape[0]
    x = frame_features(params, feats, lengths, cfg)  # [B, C, ceil(T/2)]
    s = weights.shape[1]
    w = weights[:, :, ::2].reshape(b * s, -1)
    mean, std = weighted_stats(jnp.repeat(x, s, axis=0), w)
    return pooled_embedding(params, mean, std).reshape(b, s, -1)


class WindowAnalyzer:
    """Models over batches of windows: ``segment`` every window, ``embed`` those the planner asks for.

    ``segment`` compiles once per batch size: the live graph uses 1, file mode a fixed ``batch`` (padded).
    """

    def __init__(self, seg_params: Params, emb_params: Params, geometry: WindowGeometry,
                 overlap_weight: float = 0.1) -> None:
        self.geometry = geometry
        self.overlap_weight = overlap_weight
        self.seg_params = jax.tree.map(jnp.asarray, seg_params)
        self.emb_params = jax.tree.map(jnp.asarray, emb_params)
        self.samples = round(geometry.duration * SAMPLE_RATE)
        self.fbank_config = FbankConfig()
        seg_centres = np.arange(num_frames(self.samples)) * FRAME_STEP + FRAME_DURATION / 2
        grid_centres = (np.arange(geometry.frames_per_window) + 0.5) * geometry.resolution
        n_fbank = 1 + (self.samples - self.fbank_config.frame_length) // self.fbank_config.frame_shift
        fbank_centres = (np.arange(n_fbank) * self.fbank_config.frame_shift
                         + self.fbank_config.frame_length / 2) / SAMPLE_RATE
        self.to_grid = interpolation_matrix(seg_centres, grid_centres).astype(np.float32)
        self.to_fbank = interpolation_matrix(seg_centres, fbank_centres).astype(np.float32)

    def segment(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[B, samples] -> (activity on the grid [B, frames_per_window, 3], model-frame activity [B, frames, 3])."""
        activity, _ = segment(self.seg_params, windows)  # 0/1 per model frame
        return np.einsum("ts,bsk->btk", self.to_grid, activity), activity

    def embed(self, windows: np.ndarray, activity: np.ndarray, padding: list[int]) -> np.ndarray:
        """[B, samples] + model-frame activity [B, frames, 3] -> [B, 3, 192]; NaN for never-active speakers.

        ``padding[b]`` samples at the start of window b are the silence before the stream began: they are cut
        off (the valid audio moves to the front, the rest is masked), so they never reach CAM++'s mean
        normalisation or its context masks.
        """
        weights = np.swapaxes(pooling_weights(np.einsum("ts,bsk->btk", self.to_fbank, activity),
                                              self.overlap_weight), 1, 2).astype(np.float32)
        total = weights.shape[-1]
        out = []
        for window, w, pad in zip(windows, weights, padding):  # one window per call: a single compiled shape
            feats = fbank(window[pad:].astype(np.float64) * PCM_SCALE, self.fbank_config)
            feats -= feats.mean(axis=0)
            n = len(feats)
            skip = total - n  # fbank frames lost to the padding
            padded_feats = np.zeros((1, total, feats.shape[1]), np.float32)
            padded_feats[0, :n] = feats
            shifted = np.zeros((1, w.shape[0], total), np.float32)
            shifted[0, :, :n] = w[:, skip:]
            out.append(np.asarray(_embed_speakers(self.emb_params, jnp.asarray(padded_feats), jnp.asarray([n]),
                                                  jnp.asarray(shifted), CampplusConfig())))
        emb = np.concatenate(out)
        return np.where((activity.max(axis=1) > 0)[..., None], emb, np.nan)
