"""Local speaker activity from segmentation-3.0: a batched call and a rolling-window streaming block.

`segment` runs fixed-length windows in a batch (one compile per window length and batch size); `RollingSegmenter`
is the live node's stateful step: push audio of any length, get the activity of every window that completed.
Window k covers samples [k * step, k * step + window) of the stream, so the streaming output equals `segment`
run on the same slices.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nodes.capture.conform import check_model_audio
from nodes.segmentation.model import (
    MIN_SAMPLES,
    NUM_CLASSES,
    SAMPLE_RATE,
    SINC_STRIDE,
    num_frames,
    pyannet,
    pyannet_rolling,
)
from nodes.segmentation.powerset import NUM_SPEAKERS, to_multilabel
from stream.errors import AudioError, ConfigError

Params = dict[str, Any]


def check_waveforms(waveforms: np.ndarray, sample_rate: int, min_samples: int = MIN_SAMPLES) -> np.ndarray:
    """Validate [B, samples] (or [samples]) audio for the model; returns it as float32 [B, samples]."""
    x = np.asarray(waveforms)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise AudioError(f"segmentation takes mono audio as [batch, samples], got shape {x.shape}: down-mix it")
    return check_model_audio(x, sample_rate, model="segmentation", rate=SAMPLE_RATE, min_samples=min_samples)


@jax.jit
def _forward(params: Params, waveforms: jax.Array) -> jax.Array:
    return pyannet(params, waveforms)


@partial(jax.jit, static_argnums=(2, 3))
def _forward_rolling(params: Params, audio: jax.Array, window: int, step: int) -> jax.Array:
    return pyannet_rolling(params, audio, window, step)


def segment(
    params: Params, waveforms: np.ndarray, sample_rate: int = SAMPLE_RATE, soft: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """[B, samples] 16 kHz windows -> (activity [B, frames, 3], powerset log-probs [B, frames, 7]).

    Activity is 0/1 per local speaker (most likely powerset class), or marginal probabilities with `soft`.
    Local speaker indices are arbitrary per window: windows must be aligned by the clustering step.
    """
    x = check_waveforms(waveforms, sample_rate)
    log_probs = _forward(params, jnp.asarray(x))
    return np.asarray(to_multilabel(log_probs, soft)), np.asarray(log_probs)


def segment_rolling(
    params: Params, audio: np.ndarray, window: int, step: int, soft: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """`segment` of every `window`-sample window every `step` samples of 16 kHz `audio` [samples], in one call.

    Consecutive windows share SincNet's filter bank (`model.pyannet_rolling`); one compile per span length.
    """
    if step % SINC_STRIDE or window < MIN_SAMPLES:
        raise ConfigError(f"rolling segmentation needs a step that is a multiple of {SINC_STRIDE} samples and a "
                          f"window of at least {MIN_SAMPLES} samples, got step {step}, window {window}")
    x = check_waveforms(audio, SAMPLE_RATE, window)[0]
    log_probs = _forward_rolling(params, jnp.asarray(x), window, step)
    return np.asarray(to_multilabel(log_probs, soft)), np.asarray(log_probs)


@dataclass(frozen=True)
class RollingConfig:
    """Geometry of the rolling window (diart's `duration` and `step`)."""

    window: float = 5.0  # s of audio per window, [0.062, 10]; the model was trained on 10 s
    step: float = 0.5  # s between window starts, (0, window]; latency floor of the live output
    sample_rate: int = SAMPLE_RATE  # Hz of the pushed audio; only 16000 is supported
    soft: bool = False  # marginal probabilities instead of 0/1 activity

    def __post_init__(self) -> None:
        if self.sample_rate != SAMPLE_RATE:
            raise ConfigError(f"segmentation sample_rate must be {SAMPLE_RATE} Hz, got {self.sample_rate}")
        if not MIN_SAMPLES / SAMPLE_RATE <= self.window <= 10.0:
            raise ConfigError(f"segmentation window must be in [{MIN_SAMPLES / SAMPLE_RATE:.3f}, 10] s, got {self.window}")
        if not 0 < self.step <= self.window:
            raise ConfigError(f"segmentation step must be in (0, window={self.window}] s, got {self.step}")
        for name in ("window", "step"):
            samples = getattr(self, name) * self.sample_rate
            if abs(samples - round(samples)) > 1e-6:
                raise ConfigError(f"segmentation {name}={getattr(self, name)} s is not a whole number of samples")

    @property
    def window_samples(self) -> int:
        return int(round(self.window * self.sample_rate))

    @property
    def step_samples(self) -> int:
        return int(round(self.step * self.sample_rate))

    @property
    def frames(self) -> int:
        """Output frames per window (293 for 5 s, 589 for 10 s)."""
        return num_frames(self.window_samples)


@dataclass(frozen=True)
class WindowActivity:
    """Local speaker activity of one window of the stream."""

    start: float  # s from the first pushed sample to the window start
    activity: np.ndarray  # [frames, 3] 0/1 (or probabilities when soft)
    log_probs: np.ndarray  # [frames, 7] powerset log-probabilities


def rolling_windows(audio: np.ndarray, config: RollingConfig) -> np.ndarray:
    """[windows, window samples] view of every complete window of `audio` (what the stream would emit)."""
    x = np.asarray(audio, np.float32)
    count = 0 if len(x) < config.window_samples else (len(x) - config.window_samples) // config.step_samples + 1
    if count == 0:
        return np.zeros((0, config.window_samples), np.float32)
    return np.lib.stride_tricks.sliding_window_view(x, config.window_samples)[:: config.step_samples][:count]


class RollingSegmenter:
    """Streaming segmentation: `push(samples)` -> activity of each newly completed window.

    State is the audio not yet fully consumed (< window samples) and the start of the next window.
    """

    def __init__(self, params: Params, config: RollingConfig = RollingConfig()) -> None:
        self.config = config
        self._params = jax.device_put(params)
        self.reset()

    def reset(self) -> None:
        """Forget all pushed audio; the next sample pushed is time 0."""
        self._buffer = np.zeros(0, np.float32)
        self._next_start = 0  # samples from stream start to the first sample of `_buffer`

    def warmup(self) -> None:
        """Compile for this window length now rather than on the first live window."""
        segment(self._params, np.zeros((1, self.config.window_samples), np.float32), self.config.sample_rate)

    def push(self, samples: np.ndarray) -> list[WindowActivity]:
        """Append mono 16 kHz float samples; returns the windows they completed, oldest first."""
        x = np.asarray(samples)
        if x.ndim != 1:
            raise AudioError(f"push mono samples as a 1-D array, got shape {x.shape}")
        if len(x):
            check_waveforms(x, self.config.sample_rate, min_samples=1)
        self._buffer = np.concatenate([self._buffer, x.astype(np.float32, copy=False)])
        out = []
        size, step = self.config.window_samples, self.config.step_samples
        while len(self._buffer) >= size:
            activity, log_probs = segment(self._params, self._buffer[None, :size], soft=self.config.soft)
            out.append(WindowActivity(self._next_start / self.config.sample_rate, activity[0], log_probs[0]))
            self._buffer = self._buffer[step:]
            self._next_start += step
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"buffer": self._buffer.copy(), "next_start": self._next_start}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._buffer = np.asarray(state["buffer"], np.float32).copy()
        self._next_start = int(state["next_start"])


def segment_file(
    params: Params, audio: np.ndarray, config: RollingConfig = RollingConfig(), batch: int = 8
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Whole-file rolling segmentation, batched: window starts [N] s, activity [N, frames, 3], log-probs.

    Same windows and numbers as feeding `audio` through `RollingSegmenter` (within float rounding: consecutive
    windows share SincNet's filter bank); the last batch is zero-padded to `batch` windows so only one shape is
    ever compiled.
    """
    x = check_waveforms(audio, config.sample_rate, config.window_samples)[0]
    count = (len(x) - config.window_samples) // config.step_samples + 1
    span = config.window_samples + (batch - 1) * config.step_samples
    activity = np.zeros((count, config.frames, NUM_SPEAKERS), np.float32)
    log_probs = np.zeros((count, config.frames, NUM_CLASSES), np.float32)
    for first in range(0, count, batch):
        n = min(batch, count - first)
        chunk = x[first * config.step_samples:][:span]
        a, lp = segment_rolling(params, np.pad(chunk, (0, span - len(chunk))), config.window_samples,
                                config.step_samples, config.soft)
        activity[first:first + n], log_probs[first:first + n] = a[:n], lp[:n]
    return np.arange(count) * config.step, activity, log_probs
