"""PyanNet (pyannote segmentation-3.0) as a pure JAX function over a parameter pytree.

Figure: waveform -> instance norm -> SincNet (80 learned band-pass filters, 3 conv/pool/norm stages)
-> 4-layer BiLSTM 128 -> 2 x (linear 128 + leaky ReLU) -> linear to 7 powerset classes -> log-softmax.
Audio is 16 kHz mono; one output frame every 270 samples (16.875 ms), each seeing 991 samples (61.9 ms).

Parameter tree (see `convert.py` for where each leaf comes from):
    sincnet/wav_norm/{weight,bias}             [1]
    sincnet/filterbank/{low_hz,band_hz}        [40, 1] learned cut-offs (Hz, before abs and the 50 Hz floors)
    sincnet/conv{1,2}/{weight,bias}            [60, C_in, 5], [60]
    sincnet/norm{0,1,2}/{weight,bias}          [80] / [60]
    lstm/layer{0..3}/{w_ih,w_hh,b}             [2 directions, 512, in], [2, 512, 128], [2, 512]
    linear{0,1}/{weight,bias}, classifier/{weight,bias}
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Params = dict[str, Any]

SAMPLE_RATE = 16000  # Hz; SincNet's filters are defined for 16 kHz only
NUM_CLASSES = 7  # powerset classes: {}, {0}, {1}, {2}, {0,1}, {0,2}, {1,2}
SINC_FILTERS = 80  # 40 cosine (even) + 40 sine (odd) filters
SINC_KERNEL = 251  # taps (15.7 ms)
SINC_STRIDE = 10  # samples
MIN_LOW_HZ = 50.0
MIN_BAND_HZ = 50.0
LSTM_HIDDEN = 128
LSTM_LAYERS = 4
NORM_EPS = 1e-5  # torch InstanceNorm1d default
LEAKY_SLOPE = 0.01  # torch leaky_relu default

# (kernel, stride) of every conv/pool in SincNet, in order: the frame geometry follows from these alone.
_STAGES = ((SINC_KERNEL, SINC_STRIDE), (3, 3), (5, 1), (3, 3), (5, 1), (3, 3))


def num_frames(num_samples: int) -> int:
    """Output frames for `num_samples` input samples (589 for 10 s, 293 for 5 s)."""
    n = num_samples
    for kernel, stride in _STAGES:
        n = (n - kernel) // stride + 1
    return max(n, 0)


def receptive_field_samples(frames: int = 1) -> int:
    """Input samples seen by `frames` consecutive output frames (991 for one frame)."""
    n = frames
    for kernel, stride in reversed(_STAGES):
        n = (n - 1) * stride + kernel
    return n


FRAME_STEP_SAMPLES = receptive_field_samples(2) - receptive_field_samples(1)  # 270
FRAME_STEP = FRAME_STEP_SAMPLES / SAMPLE_RATE  # s between consecutive frames
FRAME_DURATION = receptive_field_samples(1) / SAMPLE_RATE  # s of audio one frame sees
MIN_SAMPLES = receptive_field_samples(1)  # shortest input giving one frame


def frame_start(frame: int) -> float:
    """Start time (s, from the window start) of the audio that output `frame` sees; frame 0 starts at 0."""
    return frame * FRAME_STEP


def sinc_window_and_time() -> tuple[np.ndarray, np.ndarray]:
    """The fixed half Hamming window and half time axis (rad/s * s) of the sinc filters, as float32.

    Built exactly as asteroid-filterbanks' ParamSincFB builds its buffers, so the converter can check them.
    """
    half = SINC_KERNEL // 2
    window = np.hamming(SINC_KERNEL)[:half].astype(np.float32)
    time = (2 * np.pi * (np.arange(-half, 0, dtype=np.float32) / SAMPLE_RATE)).astype(np.float32)
    return window, time[None, :]


def sinc_filters(low_hz: jax.Array, band_hz: jax.Array) -> jax.Array:
    """[80, 1, 251] band-pass filters from learned cut-offs [40, 1] (Hz): 40 even (cos) then 40 odd (sin)."""
    window_np, time_np = sinc_window_and_time()
    window, time = jnp.asarray(window_np), jnp.asarray(time_np)
    low = MIN_LOW_HZ + jnp.abs(low_hz)
    high = jnp.clip(low + MIN_BAND_HZ + jnp.abs(band_hz), MIN_LOW_HZ, SAMPLE_RATE / 2)
    band = (high - low)[:, 0]
    ft_low, ft_high = low @ time, high @ time  # [40, 125] phase at each tap
    even_left = (jnp.sin(ft_high) - jnp.sin(ft_low)) / (time / 2) * window
    odd_left = (jnp.cos(ft_low) - jnp.cos(ft_high)) / (time / 2) * window
    even = jnp.concatenate([even_left, 2 * band[:, None], even_left[:, ::-1]], axis=1)
    odd = jnp.concatenate([odd_left, jnp.zeros_like(band)[:, None], -odd_left[:, ::-1]], axis=1)
    filters = jnp.concatenate([even, odd], axis=0) / (2 * jnp.concatenate([band, band]))[:, None]
    return filters[:, None, :]


def _conv1d(x: jax.Array, weight: jax.Array, stride: int = 1) -> jax.Array:
    """Channels-last [B, T, C_in] * torch-layout [C_out, C_in, K] -> [B, T', C_out], valid padding (torch
    Conv1d padding=0). Channels-last because XLA:CPU runs these 1-D convolutions faster that way."""
    return jax.lax.conv_general_dilated(
        x, jnp.transpose(weight, (2, 1, 0)), window_strides=(stride,), padding="VALID",
        dimension_numbers=("NWC", "WIO", "NWC"), precision=jax.lax.Precision.HIGHEST,
    )


def _max_pool3(x: jax.Array) -> jax.Array:
    """[B, T, C]: max over non-overlapping groups of 3 frames, dropping the remainder (torch MaxPool1d(3, 3))."""
    b, t, c = x.shape
    return x[:, : t // 3 * 3].reshape(b, t // 3, 3, c).max(axis=2)


def _instance_norm(x: jax.Array, p: Params) -> jax.Array:
    """[B, T, C]: normalise each channel of each example over time, then scale and shift per channel."""
    mean = x.mean(axis=1, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=1, keepdims=True)
    return (x - mean) / jnp.sqrt(var + NORM_EPS) * p["weight"] + p["bias"]


def sinc_responses(p: Params, audio: jax.Array) -> jax.Array:
    """[B, samples] raw (un-normalised) audio -> [B, frames, 80] band-pass responses, one every 10 samples."""
    return _conv1d(audio[:, :, None], sinc_filters(p["filterbank"]["low_hz"], p["filterbank"]["band_hz"]), SINC_STRIDE)


def sincnet(p: Params, waveforms: jax.Array, responses: jax.Array) -> jax.Array:
    """[B, samples] windows and their raw `sinc_responses` [B, frames', 80] -> [B, frames, 60] local features.

    The input instance norm is an affine map per window (x -> a x + c) and the filter bank is linear, so the
    filters' response to the normalised window is a * response + c * sum(filter): the costliest convolution
    runs on raw audio, which overlapping windows can share (`pyannet_rolling`).
    """
    mean = waveforms.mean(axis=-1)
    var = jnp.mean(jnp.square(waveforms - mean[:, None]), axis=-1)
    scale = p["wav_norm"]["weight"] / jnp.sqrt(var + NORM_EPS)  # [B]
    shift = p["wav_norm"]["bias"] - mean * scale
    gains = sinc_filters(p["filterbank"]["low_hz"], p["filterbank"]["band_hz"]).sum(axis=-1)[:, 0]  # [80]
    x = scale[:, None, None] * responses + shift[:, None, None] * gains
    x = jax.nn.leaky_relu(_instance_norm(_max_pool3(jnp.abs(x)), p["norm0"]), LEAKY_SLOPE)
    for i in (1, 2):
        x = _conv1d(x, p[f"conv{i}"]["weight"]) + p[f"conv{i}"]["bias"]
        x = jax.nn.leaky_relu(_instance_norm(_max_pool3(x), p[f"norm{i}"]), LEAKY_SLOPE)
    return x


def _lstm_cell(g: jax.Array, c: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Gate pre-activations [B, 4H] in torch order (input, forget, cell, output) and cell [B, H] -> (h, c).
    One sigmoid over all gates (the cell gate's is unused): 11 % less CPU than four."""
    hidden = c.shape[-1]
    s = jax.nn.sigmoid(g)
    c = s[:, hidden:2 * hidden] * c + s[:, :hidden] * jnp.tanh(g[:, 2 * hidden:3 * hidden])
    return s[:, 3 * hidden:] * jnp.tanh(c), c


def bilstm_layer(p: Params, x: jax.Array) -> jax.Array:
    """One bidirectional LSTM layer, [B, T, F] -> [B, T, 2H].

    Both directions run in one scan (the backward one reads the time-reversed input projections), each with its
    own [B, H] x [H, 4H] product per step (faster on XLA:CPU than one batched product over the two). The input
    projections of both directions are one [B*T, F] x [F, 2*4H] matrix product (the layer's largest).
    """
    hidden = p["w_hh"].shape[-1]
    b, t, _ = x.shape
    w_ih = p["w_ih"].reshape(-1, p["w_ih"].shape[-1])  # [2 * 4H, F]
    g = jnp.matmul(x.reshape(b * t, -1), w_ih.T, precision="highest").reshape(b, t, 2, -1) + p["b"]
    forward_in, backward_in = jnp.swapaxes(g[:, :, 0], 0, 1), jnp.swapaxes(g[:, ::-1, 1], 0, 1)  # [T, B, 4H]
    w_forward, w_backward = p["w_hh"][0].T, p["w_hh"][1].T

    def step(carry: tuple[jax.Array, ...], g_in: tuple[jax.Array, jax.Array]) -> tuple[tuple[jax.Array, ...], tuple]:
        hf, cf, hb, cb = carry
        hf, cf = _lstm_cell(g_in[0] + jnp.matmul(hf, w_forward, precision="highest"), cf)
        hb, cb = _lstm_cell(g_in[1] + jnp.matmul(hb, w_backward, precision="highest"), cb)
        return (hf, cf, hb, cb), (hf, hb)

    zeros = jnp.zeros((b, hidden), x.dtype)
    _, (forward, backward) = jax.lax.scan(step, (zeros,) * 4, (forward_in, backward_in))  # [T, B, H] each
    return jnp.swapaxes(jnp.concatenate([forward, backward[::-1]], axis=-1), 0, 1)


def _linear(p: Params, x: jax.Array) -> jax.Array:
    return jnp.einsum("...i,oi->...o", x, p["weight"], precision="highest") + p["bias"]


def _classify(params: Params, waveforms: jax.Array, responses: jax.Array) -> jax.Array:
    x = sincnet(params["sincnet"], waveforms, responses)
    for layer in range(LSTM_LAYERS):
        x = bilstm_layer(params["lstm"][f"layer{layer}"], x)
    for layer in range(2):
        x = jax.nn.leaky_relu(_linear(params[f"linear{layer}"], x), LEAKY_SLOPE)
    return jax.nn.log_softmax(_linear(params["classifier"], x), axis=-1)


def pyannet(params: Params, waveforms: jax.Array) -> jax.Array:
    """[B, samples] at 16 kHz -> [B, num_frames(samples), 7] powerset log-probabilities."""
    return _classify(params, waveforms, sinc_responses(params["sincnet"], waveforms))


def pyannet_rolling(params: Params, audio: jax.Array, window: int, step: int) -> jax.Array:
    """Every window of `window` samples every `step` samples of `audio` [samples] -> [windows, frames, 7].

    Equal to `pyannet` on the stacked windows, but SincNet's filter bank runs once over the span instead of
    once per window (`step` must be a multiple of its 10-sample stride): with 5 s windows every 0.5 s and 8 per
    call, 4.7x less work for the largest convolution.
    """
    count = (audio.shape[0] - window) // step + 1
    starts = [k * step for k in range(count)]
    windows = jnp.stack([audio[s:s + window] for s in starts])
    responses = sinc_responses(params["sincnet"], audio[None])[0]  # [span frames, 80]
    frames = (window - SINC_KERNEL) // SINC_STRIDE + 1
    responses = jnp.stack([responses[s // SINC_STRIDE:s // SINC_STRIDE + frames] for s in starts])
    return _classify(params, windows, responses)
