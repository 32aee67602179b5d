"""Sliding-window CAM++ embeddings per stream that cost one step of audio, not one window, per step.

`IncrementalEmbedder(params, IncrementalConfig(window_s=2.0, step_s=0.5))` takes 16 kHz audio in any chunk sizes
and returns one embedding per completed step, each describing the last `window_s` of audio. A full recompute runs
the whole CAM++ trunk over every window (window/step times per frame); here each fbank frame goes through the
trunk once, when its step arrives, and the window's embedding pools the cached trunk outputs.

What is cached, per stream:
- the last window of fbank frames (for the mean subtracted from new frames);
- for every convolution that spans time, the last few input frames it needs as left context;
- for every CAM layer, the sum of its hidden activations over each step of the window (its context);
- the trunk outputs (512 channels at 50 frames/s) of the whole window, which are pooled into the embedding.

The exact approximation (everything else is the same arithmetic as `campplus.forward`):
1. Mean normalisation: a new step's frames have the mean of the fbank over the window *ending at that step*
   subtracted; a full recompute subtracts one mean (the current window's) from every frame.
2. No right context: every time-spanning conv sees zeros after the newest frame (as the last frames of a whole
   utterance do), and outputs are never revised when later frames arrive. Left context is real audio, also
   across the window's start (a full recompute zero-pads there).
3. CAM context: a CAM layer gates a step's frames with the mean of its activations over the window ending at
   that step (the full model uses the mean of the whole current window; with `window_s` <= 2 s the window is one
   100-frame CAM segment, so segment mean = window mean and the context is twice the window mean).
CAM++ stacks ~60 non-causal convolutions, so the missing right context at every step boundary travels far: a
step costs ~1/4 of a full recompute, but the cosine to it is only ~0.86 (bench/RESULTS.md, "Speaker
embeddings", has cosine, EER and cost; recomputing the newest 1 s every step lifts the cosine to ~0.98 but costs
as much as a full recompute, so that variant was dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nodes.embedding.api import FBANK, MIN_FRAMES, WAVE_SCALE
from nodes.embedding.campplus import CampplusConfig, pooled_embedding
from nodes.embedding.layers import affine, conv1d, conv2d, weighted_stats
from nodes.features.streaming import StreamingFeatures
from stream.errors import AudioError, ConfigError
from stream.models import Params

HEAD_BLOCKS = (("res1", 2), ("res2", 1), ("res3", 2), ("res4", 1))  # FCM residual blocks, frequency stride


@dataclass(frozen=True)
class IncrementalConfig:
    """Window and step of the sliding embeddings (seconds; step must be a multiple of 20 ms, window of step)."""

    window_s: float = 2.0  # [0.2, 2.0] audio each embedding describes
    step_s: float = 0.5  # [0.02, window_s] time between embeddings

    def __post_init__(self) -> None:
        step, window = self.step_frames, self.window_frames
        if step < 2 or abs(self.step_s * 100 - step) > 1e-6 or step % 2:
            raise ConfigError(f"step_s must be a positive multiple of 0.02 s, got {self.step_s}")
        if window % step or window < step:
            raise ConfigError(f"window_s ({self.window_s}) must be a whole number of steps ({self.step_s} s)")
        if window // 2 > CampplusConfig().seg_len or window < MIN_FRAMES:
            raise ConfigError(f"window_s must be in [0.2, 2.0] s (one CAM++ context segment), got {self.window_s}")

    @property
    def step_frames(self) -> int:
        return round(self.step_s * 100)

    @property
    def window_frames(self) -> int:
        return round(self.window_s * 100)

    @property
    def steps_per_window(self) -> int:
        return self.window_frames // self.step_frames


def _shift_in(cache: jax.Array, new: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(cache ++ new along time, the new cache = last len(cache) frames of that)."""
    ext = jnp.concatenate([cache, new], axis=-1)
    return ext, ext[..., ext.shape[-1] - cache.shape[-1] :]


def _right_zeros(x: jax.Array, n: int) -> jax.Array:
    return jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, n)])


def _conv2d_step(w: jax.Array, cache: jax.Array, x: jax.Array, stride: tuple[int, int] = (1, 1)):
    ext, cache = _shift_in(cache, x)
    return conv2d(_right_zeros(ext, 1), w, stride, pad_time=False), cache


def init_state(params: Params, cfg: CampplusConfig, inc: IncrementalConfig, batch: int = 1) -> dict[str, Any]:
    """Zero caches for `batch` streams (zeros = what a whole utterance sees before its first frame)."""
    c, f = cfg.head_channels, cfg.feat_dim
    head = {"conv1": jnp.zeros((batch, 1, f, 1)), "conv2": jnp.zeros((batch, c, f // 4, 1))}
    freq = f
    for name, stride in HEAD_BLOCKS:
        head[name] = {"conv1": jnp.zeros((batch, c, freq, 1)), "conv2": jnp.zeros((batch, c, freq // stride, 1))}
        freq //= stride
    state: dict[str, Any] = {"fbank": jnp.zeros((batch, inc.window_frames, f)), "head": head,
                             "tdnn": jnp.zeros((batch, c * (f // 8), 2))}
    bottleneck = cfg.bn_size * cfg.growth_rate
    for i, (num_layers, _kernel, dilation) in enumerate(cfg.blocks, start=1):
        state[f"block{i}"] = {str(j): {"h": jnp.zeros((batch, bottleneck, dilation)),
                                       "sums": jnp.zeros((batch, inc.steps_per_window - 1, bottleneck))}
                              for j in range(1, num_layers + 1)}
    channels = params["out_bn"]["scale"].shape[0]
    state["trunk"] = jnp.zeros((batch, channels, inc.window_frames // 2))
    return state


def _head_step(p: Params, cache: dict, feats: jax.Array) -> tuple[jax.Array, dict]:
    """FCM over one step: [B, F, S] -> [B, C*F/8, S] with one frame of left context per conv."""
    new: dict[str, Any] = {}
    x, new["conv1"] = _conv2d_step(p["conv1"], cache["conv1"], feats[:, None])
    x = jax.nn.relu(affine(x, p["bn1"]))
    for name, stride in HEAD_BLOCKS:
        q, qc = p[name], cache[name]
        out, c1 = _conv2d_step(q["conv1"], qc["conv1"], x, (stride, 1))
        out = jax.nn.relu(affine(out, q["bn1"]))
        out, c2 = _conv2d_step(q["conv2"], qc["conv2"], out)
        out = affine(out, q["bn2"])
        short = affine(conv2d(x, q["shortcut"]["conv"], (stride, 1)), q["shortcut"]["bn"]) if "shortcut" in q else x
        x, new[name] = jax.nn.relu(out + short), {"conv1": c1, "conv2": c2}
    x, new["conv2"] = _conv2d_step(p["conv2"], cache["conv2"], x, (2, 1))
    x = jax.nn.relu(affine(x, p["bn2"]))
    b, c, f, t = x.shape
    return x.reshape(b, c * f, t), new


def _cam_step(p: Params, cache: dict, x: jax.Array, dilation: int, frames: jax.Array) -> tuple[jax.Array, dict]:
    """One CAM layer over one step; `frames` = valid frames in the window so far (for the context mean)."""
    h = conv1d(jax.nn.relu(affine(x, p["bn1"])), p["bottleneck"])
    h = jax.nn.relu(affine(h, p["bn2"]))
    ext, h_cache = _shift_in(cache["h"], h)
    local = conv1d(_right_zeros(ext, dilation), p["local"], dilation=dilation, padding=0)
    step_sum = h.sum(-1)
    mean = (cache["sums"].sum(1) + step_sum) / frames
    context = (2 * mean)[..., None]  # utterance mean + segment mean: equal inside a <= 2 s window
    gate = jax.nn.relu(conv1d(context, p["ctx1"]["w"]) + p["ctx1"]["b"][None, :, None])
    gate = jax.nn.sigmoid(conv1d(gate, p["ctx2"]["w"]) + p["ctx2"]["b"][None, :, None])
    sums = jnp.concatenate([cache["sums"], step_sum[:, None]], axis=1)[:, 1:]
    return local * gate, {"h": h_cache, "sums": sums}


def step(params: Params, state: dict, fbank: jax.Array, filled: jax.Array,
         cfg: CampplusConfig = CampplusConfig()) -> tuple[dict, jax.Array]:
    """One step for B streams: new fbank [B, S, 80] (raw), frames seen capped at the window [B] -> (state, emb)."""
    new: dict[str, Any] = {}
    ring = jnp.concatenate([state["fbank"], fbank], axis=1)[:, fbank.shape[1] :]
    new["fbank"] = ring
    mean = ring.sum(1, keepdims=True) / filled[:, None, None]
    x, new["head"] = _head_step(params["head"], state["head"], jnp.swapaxes(fbank - mean, 1, 2))
    ext, new["tdnn"] = _shift_in(state["tdnn"], x)
    x = conv1d(_right_zeros(ext, 2), params["tdnn"]["w"], stride=2, padding=0)
    x = jax.nn.relu(affine(x, params["tdnn"]["bn"]))
    half = (filled + 1) // 2
    for i, (num_layers, _kernel, dilation) in enumerate(cfg.blocks, start=1):
        block, caches = params[f"block{i}"], {}
        for j in range(1, num_layers + 1):
            out, caches[str(j)] = _cam_step(block[str(j)], state[f"block{i}"][str(j)], x, dilation, half[:, None])
            x = jnp.concatenate([x, out], axis=1)
        new[f"block{i}"] = caches
        transit = params[f"transit{i}"]
        x = conv1d(jax.nn.relu(affine(x, transit["bn"])), transit["w"])
    x = jax.nn.relu(affine(x, params["out_bn"]))
    trunk = jnp.concatenate([state["trunk"], x], axis=-1)[..., x.shape[-1] :]
    new["trunk"] = trunk
    mean, std = weighted_stats(trunk, jnp.ones(trunk.shape[::2]))
    return new, pooled_embedding(params, mean, std)


_step = jax.jit(step, static_argnames="cfg")


class IncrementalEmbedder:
    """Per-stream sliding-window embeddings: `embeddings = emb(audio_chunk)` -> [n_steps_completed, 192].

    Audio is 16 kHz mono float in [-1, 1]; the first embedding comes once `window_s` of audio has arrived, then
    one per `step_s`. `warmup()` compiles the step so the first real chunk is not slow.
    """

    def __init__(self, params: Params, config: IncrementalConfig = IncrementalConfig(),
                 cfg: CampplusConfig = CampplusConfig()) -> None:
        self.params, self.config, self.cfg = params, config, cfg
        self.features = StreamingFeatures(FBANK)
        self.reset()

    def reset(self) -> None:
        """Start a new stream: drop buffered audio, features and every cache."""
        self.features.reset()
        self.state = init_state(self.params, self.cfg, self.config)
        self._pending = np.zeros((0, self.cfg.feat_dim), np.float32)
        self.frames = 0  # fbank frames consumed by steps

    def warmup(self) -> None:
        s = self.config.step_frames
        jax.block_until_ready(_step(self.params, self.state, jnp.zeros((1, s, self.cfg.feat_dim)),
                                    jnp.full((1,), s), self.cfg))

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        feats = self.features(np.asarray(audio, np.float32) * WAVE_SCALE)
        self._pending = np.concatenate([self._pending, feats])
        s, out = self.config.step_frames, []
        while len(self._pending) >= s:
            chunk, self._pending = self._pending[:s], self._pending[s:]
            self.frames += s
            filled = min(self.frames, self.config.window_frames)
            self.state, emb = _step(self.params, self.state, jnp.asarray(chunk[None]), jnp.full((1,), filled), self.cfg)
            if self.frames >= self.config.window_frames:
                out.append(np.asarray(emb[0]))
        if out and not np.all(np.isfinite(out)):
            raise AudioError("a non-finite embedding: the audio contains NaN/inf or the weights are corrupt")
        return np.stack(out) if out else np.zeros((0, self.cfg.embedding_size), np.float32)

    def state_dict(self) -> dict[str, Any]:
        return {"features": self.features.state_dict(), "state": jax.tree.map(np.asarray, self.state),
                "pending": self._pending.copy(), "frames": self.frames}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.features.load_state_dict(state["features"])
        self.state = jax.tree.map(jnp.asarray, state["state"])
        self._pending = np.asarray(state["pending"], np.float32)
        self.frames = int(state["frames"])
