"""Sliding-window CAM++ embeddings per stream that cost one step of audio, not one window, per step.

`IncrementalEmbedder(params, IncrementalConfig(window_s=2.0, step_s=0.5, context_s=0.5))` takes 16 kHz audio in any
chunk sizes and returns one embedding per completed step, each describing the last `window_s` of audio. A full
recompute runs the CAM++ trunk over every window (window/step times per frame); here each step's frames go through
the trunk once, and the window's embedding pools cached per-step statistics.

The cache is at the statistics level, per stream:
- the last window of fbank frames (the mean subtracted from new frames, and the left context of the next step);
- for each step of the window, the sums over its trunk output frames (512 channels at 50 frames/s) of x and x².
A window's mean and (unbiased) std are the summed statistics of its steps, and `pooled_embedding` maps them to
the embedding, exactly as `campplus.forward` does with unit weights.

The exact approximation (everything else is the same arithmetic as `campplus.forward`):
1. Each step's trunk outputs come from a short run of `frame_features` over [`context_s` of earlier fbank | the
   step], keeping only the step's own frames. The trunk sees real audio for `context_s` on the left (zeros before
   the stream starts) and zeros on the right; a full recompute sees the rest of the window on both sides, with
   zeros only at the window's edges. Outputs are never revised when later frames arrive.
2. CAM context: every CAM layer gates with the mean of the short run (utterance mean + segment mean of that run),
   not of the whole window.
3. Mean normalisation: a step's frames (and its context) have the mean of the fbank over the window *ending at
   that step* subtracted; a full recompute subtracts the current window's mean from every frame.
CAM++'s receptive field (~1.8 s of dilated convolutions plus window-wide context gates) covers nearly the whole
window, so its embedding depends on where the window's edges are: no scheme that computes a frame's activations
once and shares them between windows can follow it closely: median cosine to a full recompute 0.86 / 0.90 / 0.93
at `context_s` 0 / 0.2 / 0.5, and only 0.974 with unbounded real context on both sides. More context costs more:
a step runs the trunk over context + step frames (2.9x / 2.5x / 1.6x cheaper than a 2 s window for one stream).
bench/RESULTS.md, "Speaker embeddings", has these with EER and batched costs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nodes.embedding.api import FBANK, MIN_FRAMES, WAVE_SCALE
from nodes.embedding.campplus import CampplusConfig, frame_features, pooled_embedding
from nodes.features.streaming import StreamingFeatures
from stream.errors import AudioError, ConfigError
from stream.models import Params


@dataclass(frozen=True)
class IncrementalConfig:
    """Window, step and trunk left context of the sliding embeddings (seconds, multiples of 20 ms).

    `context_s` trades cost for closeness to a full recompute: each step runs the trunk over context + step.
    """

    window_s: float = 2.0  # [0.2, 10] audio each embedding describes
    step_s: float = 0.5  # [0.02, window_s] time between embeddings; a whole fraction of window_s
    context_s: float = 0.5  # [0, window_s - step_s] earlier audio the trunk sees before each step

    def __post_init__(self) -> None:
        for name in ("window_s", "step_s", "context_s"):
            value = getattr(self, name)
            if value < 0 or abs(value * 50 - round(value * 50)) > 1e-6:
                raise ConfigError(f"{name} must be a multiple of 0.02 s, got {value}")
        step, window = self.step_frames, self.window_frames
        if step < 2:
            raise ConfigError(f"step_s must be a positive multiple of 0.02 s, got {self.step_s}")
        if window % step or window < step:
            raise ConfigError(f"window_s ({self.window_s}) must be a whole number of steps ({self.step_s} s)")
        if not MIN_FRAMES <= window <= 1000:
            raise ConfigError(f"window_s must be in [0.2, 10] s, got {self.window_s}")
        if self.context_frames + step > window:
            raise ConfigError(f"context_s + step_s must fit in window_s ({self.window_s} s), got "
                              f"{self.context_s} + {self.step_s}")

    @property
    def step_frames(self) -> int:
        return round(self.step_s * 100)

    @property
    def window_frames(self) -> int:
        return round(self.window_s * 100)

    @property
    def context_frames(self) -> int:
        return round(self.context_s * 100)

    @property
    def steps_per_window(self) -> int:
        return self.window_frames // self.step_frames


def init_state(params: Params, inc: IncrementalConfig, batch: int = 1) -> dict[str, jax.Array]:
    """Empty caches for `batch` streams: no fbank yet, zero statistics."""
    channels = params["out_bn"]["scale"].shape[0]
    stats = jnp.zeros((batch, inc.steps_per_window, channels))
    return {"fbank": jnp.zeros((batch, inc.window_frames, CampplusConfig().feat_dim)), "sum": stats, "sum2": stats}


def window_embedding(params: Params, total: jax.Array, total2: jax.Array, frames: int) -> jax.Array:
    """Summed statistics of `frames` trunk frames [B, C] x2 -> embedding [B, 192] (mean and unbiased std)."""
    mean = total / frames
    var = (total2 - frames * mean * mean) / (frames - 1)
    return pooled_embedding(params, mean, jnp.sqrt(jnp.maximum(var, 0.0)))


@partial(jax.jit, static_argnames=("inc", "cfg"))
def step(params: Params, state: dict[str, jax.Array], fbank: jax.Array, seen: jax.Array, inc: IncrementalConfig,
         cfg: CampplusConfig = CampplusConfig()) -> tuple[dict[str, jax.Array], jax.Array]:
    """One step for B streams: raw fbank of the step [B, S, 80], fbank frames seen including it [B] -> (state, emb).

    `emb` [B, 192] describes the window ending at this step (meaningful once `seen` >= window frames).
    """
    ring = jnp.concatenate([state["fbank"], fbank], axis=1)[:, fbank.shape[1] :]
    filled = jnp.minimum(seen, inc.window_frames)
    mean = ring.sum(1, keepdims=True) / filled[:, None, None]
    run = inc.context_frames + inc.step_frames
    valid = jnp.arange(run)[None, :] >= run - jnp.minimum(seen, run)[:, None]  # zeros before the stream starts
    chunk = (ring[:, -run:] - mean) * valid[..., None]
    out = frame_features(params, chunk, jnp.full(chunk.shape[:1], run), cfg)[..., inc.context_frames // 2 :]
    total = jnp.concatenate([state["sum"][:, 1:], out.sum(-1)[:, None]], axis=1)
    total2 = jnp.concatenate([state["sum2"][:, 1:], (out * out).sum(-1)[:, None]], axis=1)
    emb = window_embedding(params, total.sum(1), total2.sum(1), inc.window_frames // 2)
    return {"fbank": ring, "sum": total, "sum2": total2}, emb


def compile_step(params: Params, inc: IncrementalConfig, cfg: CampplusConfig = CampplusConfig()
                 ) -> Callable[[dict[str, jax.Array], jax.Array, jax.Array], tuple[dict[str, jax.Array], jax.Array]]:
    """`step` with the weights baked in as constants: `(state, fbank, seen) -> (state, emb)`.

    XLA then lays the weights out once at compile time instead of on every call, which halves the CPU time of a
    0.5 s step (bench/RESULTS.md); the price is one compile per (params, config, batch size).
    """
    return jax.jit(lambda state, fbank, seen: step(params, state, fbank, seen, inc, cfg))


class IncrementalEmbedder:
    """Per-stream sliding-window embeddings: `embeddings = emb(audio_chunk)` -> [n_steps_completed, 192].

    Audio is 16 kHz mono float in [-1, 1]; the first embedding comes once `window_s` of audio has arrived, then
    one per `step_s`. `warmup()` compiles the step so the first real chunk is not slow.
    """

    def __init__(self, params: Params, config: IncrementalConfig = IncrementalConfig(),
                 cfg: CampplusConfig = CampplusConfig()) -> None:
        self.params, self.config, self.cfg = params, config, cfg
        self.features = StreamingFeatures(FBANK)
        self._step = compile_step(params, config, cfg)
        self.reset()

    def reset(self) -> None:
        """Start a new stream: drop buffered audio, features and every cache."""
        self.features.reset()
        self.state = init_state(self.params, self.config)
        self._pending = np.zeros((0, self.cfg.feat_dim), np.float32)
        self.frames = 0  # fbank frames consumed by steps

    def warmup(self) -> None:
        s = self.config.step_frames
        jax.block_until_ready(self._step(self.state, jnp.zeros((1, s, self.cfg.feat_dim)), jnp.full((1,), s)))

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        feats = self.features(np.asarray(audio, np.float32) * WAVE_SCALE)
        self._pending = np.concatenate([self._pending, feats])
        s, out = self.config.step_frames, []
        while len(self._pending) >= s:
            chunk, self._pending = self._pending[:s], self._pending[s:]
            self.frames += s
            self.state, emb = self._step(self.state, jnp.asarray(chunk[None]), jnp.full((1,), self.frames))
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
