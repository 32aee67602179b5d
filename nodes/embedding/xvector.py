"""x-vector (Snyder et al. 2018): a TDNN over fbank frames, statistics pooling, one affine layer to the embedding.

    fbank [B, T, 80] -> TDNN(k5,d1) -> TDNN(k3,d2) -> TDNN(k3,d3) -> TDNN(k1) -> TDNN(k1, stats_channels)
                     -> mean ‖ std over valid frames -> affine -> embedding [B, embed_dim]

Each TDNN layer is a dilated 1-D convolution, ReLU, then layer-norm over channels. The convolution is written as
one matmul over the K shifted copies of the input ([B, T, K*C] @ [K*C, C']), which XLA runs about 1.5x faster than
its convolution on CPU. We differ from the paper's
batch-norm so that training and inference compute the same thing with no running statistics to carry; and the
embedding is the AAM-softmax input itself (the paper takes the first of two affine layers before a softmax).
Padded frames (weights 0) are zeroed after every layer, so a padded batch gives each row what it gives alone.

Input normalisation (`normalise`): by default the whole input's mean is subtracted (utterance or training crop).
With `mean_frames` > 0 each frame instead has the causal mean of the last `mean_frames` fbank frames subtracted, so
a frame's input depends only on the past and the frame-level layers have a finite receptive field (+-`CONTEXT`
frames): that is what lets `incremental_xvector` compute every frame once and match a full recompute.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from nodes.embedding.layers import weighted_stats
from stream.errors import ConfigError

Params = dict

# (kernel, dilation) of the five frame-level layers, as in the paper (context +-2, +-2, +-3, 0, 0 frames).
CONTEXTS = ((5, 1), (3, 2), (3, 3), (1, 1), (1, 1))
CONTEXT = sum((kernel - 1) // 2 * dilation for kernel, dilation in CONTEXTS)  # 7 frames each side


@dataclass(frozen=True)
class XVectorConfig:
    """Sizes of the network (the paper's are 512 / 1500 / 512; ours are smaller to train in minutes on a CPU)."""

    feat_dim: int = 80  # fbank bins in
    channels: int = 128  # width of the first four TDNN layers
    stats_channels: int = 384  # width of the last frame-level layer, pooled (mean and std)
    embed_dim: int = 128  # embedding size
    mean_frames: int = 0  # [0, 6000] 0: subtract the whole input's mean; N: a causal mean of the last N frames

    def __post_init__(self) -> None:
        if min(self.feat_dim, self.channels, self.stats_channels, self.embed_dim) < 1:
            raise ConfigError(f"x-vector sizes must be positive, got {self}")
        if not 0 <= self.mean_frames <= 6000:
            raise ConfigError(f"mean_frames must be in [0, 6000] (60 s), got {self.mean_frames}")


def normalise(feats: np.ndarray, cfg: XVectorConfig) -> np.ndarray:
    """The network input for fbank [T, F] of a stretch of audio from its start (float32).

    `mean_frames` 0: minus the mean of all T frames. N > 0: frame t minus the mean of frames max(0, t-N+1)..t,
    exactly what a stream that started with this stretch computes (`incremental_xvector`).
    """
    feats = np.asarray(feats, np.float64)
    if cfg.mean_frames == 0:
        return (feats - feats.mean(axis=0)).astype(np.float32)
    total = np.cumsum(feats, axis=0)
    total[cfg.mean_frames :] -= total[: -cfg.mean_frames].copy()
    count = np.minimum(np.arange(1, len(feats) + 1), cfg.mean_frames)[:, None]
    return (feats - total / count).astype(np.float32)


def init(key: jax.Array, cfg: XVectorConfig) -> Params:
    """Random parameters (He-normal convolutions, zero biases, unit layer-norm gains)."""
    widths = [cfg.feat_dim] + [cfg.channels] * 4 + [cfg.stats_channels]
    keys = jax.random.split(key, len(CONTEXTS) + 1)
    params: Params = {}
    for i, ((kernel, _), k) in enumerate(zip(CONTEXTS, keys)):
        fan_in = widths[i] * kernel
        params[f"tdnn{i}"] = {
            "w": jax.random.normal(k, (kernel * widths[i], widths[i + 1])) * np.sqrt(2.0 / fan_in),  # [K*Cin, Cout]
            "b": jnp.zeros(widths[i + 1]),
            "gain": jnp.ones(widths[i + 1]),
            "bias": jnp.zeros(widths[i + 1]),
        }
    params["embed"] = {
        "w": jax.random.normal(keys[-1], (2 * cfg.stats_channels, cfg.embed_dim)) / np.sqrt(2 * cfg.stats_channels),
        "b": jnp.zeros(cfg.embed_dim),
    }
    return params


def _tdnn(x: jax.Array, w: jax.Array, kernel: int, dilation: int, same: bool = True) -> jax.Array:
    """Dilated convolution of [B, T, Cin] with w [K*Cin, Cout] -> [B, T, Cout] ('same', zero padding) or, with
    `same` False, [B, T - (K-1)*dilation, Cout] ('valid': only frames whose whole context is in x)."""
    pad = (kernel - 1) // 2 * dilation if same else 0
    padded = jnp.pad(x, ((0, 0), (pad, pad), (0, 0)))
    frames = padded.shape[1] - (kernel - 1) * dilation
    shifted = [padded[:, k * dilation : k * dilation + frames] for k in range(kernel)]
    return jnp.concatenate(shifted, axis=-1) @ w


def _layer_norm(x: jax.Array, p: Params, eps: float = 1e-5) -> jax.Array:
    """Normalise [B, T, C] over channels, per frame."""
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    return (x - mean) / jnp.sqrt(var + eps) * p["gain"] + p["bias"]


def frame_valid(params: Params, x: jax.Array) -> jax.Array:
    """The frame-level layers without padding: [B, T, feat_dim] -> [B, T - 2*CONTEXT, stats_channels], output
    frame i being input frame i + CONTEXT computed from real neighbours only."""
    for i, (kernel, dilation) in enumerate(CONTEXTS):
        p = params[f"tdnn{i}"]
        x = _layer_norm(jax.nn.relu(_tdnn(x, p["w"], kernel, dilation, same=False) + p["b"]), p)
    return x


def pooled_embedding(params: Params, mean: jax.Array, std: jax.Array) -> jax.Array:
    """Pooled statistics [B, stats_channels] x2 -> embedding [B, embed_dim]."""
    return jnp.concatenate([mean, std], axis=-1) @ params["embed"]["w"] + params["embed"]["b"]


def embed(params: Params, feats: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """fbank [B, T, feat_dim] (after `normalise`), weights [B, T] (1 valid, 0 padding) -> [B, embed_dim]."""
    if weights is None:
        weights = jnp.ones(feats.shape[:2], feats.dtype)
    mask = weights[:, :, None]
    x = feats * mask
    for i, (kernel, dilation) in enumerate(CONTEXTS):
        p = params[f"tdnn{i}"]
        x = _layer_norm(jax.nn.relu(_tdnn(x, p["w"], kernel, dilation) + p["b"]), p) * mask
    mean, std = weighted_stats(jnp.swapaxes(x, 1, 2), weights)
    return pooled_embedding(params, mean, std)
