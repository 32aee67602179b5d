"""The streamable x-vector as an incremental encoder (`incremental.StepEncoder`): EXACT, every frame computed once.

A streamable x-vector (`XVectorConfig.mean_frames` > 0, trained with `stream train-embedding --mean-s 3`) has a
causal input (each fbank frame minus the mean of the last `mean_frames` raw frames, `xvector.normalise`) and
frame-level layers with a receptive field of +-`CONTEXT` = 7 frames. So each step:
1. normalises its S new fbank frames with the causal mean (cache: the last `mean_frames` raw frames);
2. runs the frame-level layers without padding over [the last 2 x 7 normalised frames | the S new ones]
   (cache: those 14 frames), which gives the S frame outputs whose whole context has arrived, i.e. those ending
   7 frames (70 ms) before the newest frame: the rest wait for the next step, a fixed delay of 7 frames;
3. hands their statistics to `incremental`, which pools the window's steps and applies the affine head.

The embedding after the step ending at fbank frame `seen` is therefore that of the window's frames
[seen - 7 - window, seen - 7) computed from their real neighbours, exactly (float32 rounding aside: the variance
comes from Σx and Σx², ~1e-6 relative), and from zeros before the stream's start. The one difference from a full
recompute `xvector.embed` of that window's normalised frames: the full recompute zero-pads every layer at the
window's two edges, so the 7 frames next to each edge see zeros where the stream has audio (measured median
cosine in bench/RESULTS.md, "Speaker embeddings"). The first window (`seen` = window) pools window - 7 frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from nodes.embedding import xvector
from nodes.embedding.incremental import IncrementalConfig, State
from nodes.embedding.xvector import CONTEXT, XVectorConfig
from stream.errors import ConfigError
from stream.models import Params


@dataclass(frozen=True)
class XVectorSteps:
    """An x-vector of sizes `cfg` stepped exactly; its input normalisation must be causal (`mean_frames` > 0)."""

    cfg: XVectorConfig
    delay_frames: int = CONTEXT

    def __post_init__(self) -> None:
        if self.cfg.mean_frames == 0:
            raise ConfigError("this x-vector subtracts each whole input's mean, which a stream cannot; train a "
                              "streamable one with `stream train-embedding --model xvector --mean-s 3`")

    @property
    def feat_dim(self) -> int:
        return self.cfg.feat_dim

    @property
    def embed_dim(self) -> int:
        return self.cfg.embed_dim

    @property
    def channels(self) -> int:
        return self.cfg.stats_channels

    def init_state(self, inc: IncrementalConfig, batch: int) -> State:
        return {"raw": jnp.zeros((batch, self.cfg.mean_frames, self.cfg.feat_dim)),
                "input": jnp.zeros((batch, 2 * CONTEXT, self.cfg.feat_dim))}

    def frames(self, params: Params, state: State, fbank: jax.Array, seen: jax.Array, inc: IncrementalConfig
               ) -> tuple[State, jax.Array, jax.Array]:
        n, s = self.cfg.mean_frames, fbank.shape[1]
        raw = jnp.concatenate([state["raw"], fbank], axis=1)  # [B, n + S, F], zeros before the stream
        # Sum of the n raw frames up to new frame j: the ring's sum plus the running sum of (entering - leaving)
        # frames, as a lower-triangular matmul (XLA's cumsum on CPU is quadratic in its length).
        change = fbank - raw[:, :s]  # new frame j enters as raw frame j leaves
        sums = state["raw"].sum(1, keepdims=True) + jnp.tril(jnp.ones((s, s))) @ change
        arrived = seen[:, None] - s + 1 + jnp.arange(s)[None, :]  # frames seen up to each new frame
        x = fbank - sums / jnp.minimum(arrived, n)[..., None]
        inputs = jnp.concatenate([state["input"], x], axis=1)  # [B, 2 * CONTEXT + S, F]
        out = xvector.frame_valid(params, inputs)  # [B, S, C]: frames seen - S - CONTEXT + j
        valid = arrived - 1 - CONTEXT >= 0
        return {"raw": raw[:, s:], "input": inputs[:, s:]}, out, valid

    def embedding(self, params: Params, mean: jax.Array, std: jax.Array) -> jax.Array:
        return xvector.pooled_embedding(params, mean, std)
