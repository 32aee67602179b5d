"""Silero VAD v6 (16 kHz) as pure JAX functions over a parameter pytree.

Figure, per 32 ms chunk: [64 context + 512 new samples] -> reflect-pad 64 on the right -> STFT as a conv
(256-tap basis, hop 128: 4 frames x 129 bins, magnitude) -> 4 conv+ReLU (strides 1, 2, 2, 1: 4 -> 1 frame)
-> LSTM cell 128 (state carried from chunk to chunk) -> ReLU -> 1x1 conv -> sigmoid = speech probability.

Parameter tree (see `convert.py`):
    stft/basis [258, 1, 256]  (129 real rows then 129 imaginary rows)
    conv{1..4}/{weight,bias}  [C_out, C_in, 3], [C_out]
    lstm/{w_ih,w_hh} [512, 128], lstm/b [512] (b_ih + b_hh; gates input, forget, cell, output)
    head/{weight,bias} [1, 128, 1], [1]
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

Params = dict[str, Any]

SAMPLE_RATE = 16000  # Hz; the 8 kHz branch of the upstream model is not ported
CHUNK = 512  # new samples per step (32 ms)
CONTEXT = 64  # samples of the previous chunk prepended to each step
HIDDEN = 128  # LSTM state size
_REFLECT_PAD = 64  # right-side reflection padding before the STFT
_HOP = 128
_STRIDES = (1, 2, 2, 1)  # of conv1..conv4, each kernel 3 with padding 1


def initial_state(batch: int = 1) -> jax.Array:
    """Zero recurrent state [2 (h, c), batch, 128], the upstream model's reset."""
    return jnp.zeros((2, batch, HIDDEN), jnp.float32)


def _conv1d(x: jax.Array, weight: jax.Array, stride: int, pad: int) -> jax.Array:
    return jax.lax.conv_general_dilated(
        x, weight, (stride,), [(pad, pad)], dimension_numbers=("NCH", "OIH", "NCH"),
        precision=jax.lax.Precision.HIGHEST,
    )


def encode(params: Params, frames: jax.Array) -> jax.Array:
    """[N, 576] context+chunk samples -> [N, 128] features; independent per chunk, so batch freely."""
    x = jnp.pad(frames, ((0, 0), (0, _REFLECT_PAD)), mode="reflect")[:, None, :]
    spec = _conv1d(x, params["stft"]["basis"], _HOP, 0)  # [N, 258, 4]
    bins = spec.shape[1] // 2
    x = jnp.sqrt(spec[:, :bins] ** 2 + spec[:, bins:] ** 2)
    for i, stride in enumerate(_STRIDES, start=1):
        x = jax.nn.relu(_conv1d(x, params[f"conv{i}"]["weight"], stride, 1) + params[f"conv{i}"]["bias"][:, None])
    return x[:, :, 0]


def decode(params: Params, features: jax.Array, state: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One LSTM step: features [B, 128], state [2, B, 128] -> (speech probability [B], new state)."""
    h, c = state[0], state[1]
    p = params["lstm"]
    gates = (
        jnp.dot(features, p["w_ih"].T, precision="highest") + jnp.dot(h, p["w_hh"].T, precision="highest") + p["b"]
    )
    i, f, g, o = jnp.split(gates, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    logit = jnp.dot(jax.nn.relu(h), params["head"]["weight"][0, :, 0], precision="highest") + params["head"]["bias"][0]
    return jax.nn.sigmoid(logit), jnp.stack([h, c])


def silero_step(params: Params, frames: jax.Array, state: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One 32 ms step for B streams: frames [B, 576], state [2, B, 128] -> (probability [B], new state)."""
    return decode(params, encode(params, frames), state)


def silero_sequence(params: Params, frames: jax.Array, state: jax.Array) -> tuple[jax.Array, jax.Array]:
    """T consecutive steps of one stream: frames [T, 576], state [2, 1, 128] -> (probabilities [T], state).

    The convolutional encoder runs on all chunks at once; only the LSTM is sequential.
    """
    features = encode(params, frames)

    def step(s: jax.Array, f: jax.Array) -> tuple[jax.Array, jax.Array]:
        prob, s = decode(params, f[None], s)
        return s, prob[0]

    state, probs = jax.lax.scan(step, state, features)
    return probs, state
