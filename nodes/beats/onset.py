"""Onset strength for beat tracking: causal log-mel spectral flux with adaptive whitening, block by block.

Why these pieces: the flux of a log-compressed mel spectrum rises at note onsets of any instrument (drums, piano,
strings), weighted towards the bass bands where beats are marked more often; optional adaptive whitening
(Stowell & Plumbley 2007, `whiten_s`) divides each band by its recent peak, so soft onsets after loud ones still
show (off by default: measured worse for beats, see `OnsetConfig`); the last stage removes the local mean and
scales by a running peak, giving values in [0, 1] the decoder can read as evidence.

Everything is causal: frame i ends at sample (i + 1) * hop, and its value depends on no later sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from stream.errors import ConfigError

RATE = 22050  # Hz: the front-end rate of both modes (BeatNet's too)


@dataclass(frozen=True)
class OnsetConfig:
    rate: int = RATE  # Hz of the samples given to `OnsetDetector.push`
    window: int = 1024  # samples per STFT frame (46 ms at 22.05 kHz)
    hop: int = 220  # samples between frames (10 ms: 100.2 frames per second)
    bands: int = 64  # mel bands, 30 Hz - 11 kHz
    compression: float = 100.0  # log(1 + compression * mel): larger = closer to log, louder soft onsets
    whiten_s: float = 0.0  # adaptive whitening memory (s, the peak follower's time to decay by 60 dB); 0 = off.
    #                        Off by default: on the tune half, 2 s whitening gave beat F 0.564 against 0.645
    #                        without (it lifts the passing notes and hi-hats between beats as much as the beats)
    whiten_floor: float = 1e-4  # floor of the peak follower (linear mel magnitude), so silence is not amplified
    tilt: float = 1.0  # [0, 4] band weights exp(-tilt * band / bands): bass and kick onsets mark beats more often
    #                    than hi-hat and cymbal ones
    mean_s: float = 0.25  # local mean removed from the flux (s of past frames)
    peak_s: float = 3.0  # running-peak normaliser memory (s to decay by half)

    def __post_init__(self) -> None:
        if not 8000 <= self.rate <= 96000:
            raise ConfigError(f"onset rate must be 8000-96000 Hz, got {self.rate}")
        if not 0 < self.hop <= self.window:
            raise ConfigError(f"onset hop must be in (0, window={self.window}], got {self.hop}")
        if self.bands < 4:
            raise ConfigError(f"onset bands must be >= 4, got {self.bands}")

    @property
    def fps(self) -> float:
        return self.rate / self.hop


def mel_filterbank(rate: int, n_fft: int, bands: int, fmin: float = 30.0, fmax: float = 11000.0) -> np.ndarray:
    """[n_fft // 2 + 1, bands] triangular filters on the mel scale (HTK formula), each summing to one."""
    def mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    fmax = min(fmax, rate / 2)
    edges = hz(np.linspace(mel(fmin), mel(fmax), bands + 2))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / rate)
    fb = np.zeros((len(freqs), bands))
    for b in range(bands):
        lo, mid, hi = edges[b:b + 3]
        up = (freqs - lo) / max(mid - lo, 1e-9)
        down = (hi - freqs) / max(hi - mid, 1e-9)
        fb[:, b] = np.clip(np.minimum(up, down), 0, None)
        if fb[:, b].sum() == 0:  # a band narrower than one bin: take the nearest bin
            fb[np.argmin(np.abs(freqs - mid)), b] = 1.0
    return (fb / fb.sum(axis=0, keepdims=True)).astype(np.float32)


@dataclass
class OnsetState:
    """What the detector carries between blocks (all small)."""

    tail: np.ndarray  # the last window - hop samples (the next frame's start)
    previous: np.ndarray  # last frame's log-mel bands
    peaks: np.ndarray  # whitening peak follower per band
    recent: np.ndarray  # last flux values (a ring), for the local mean
    recent_sum: float = 0.0  # their sum
    peak: float = 0.0  # running peak of the mean-removed flux
    frames: int = 0  # frames produced so far (after a gap: the stream's frame index, see `OnsetDetector.resume`)
    valid: int = 0  # frames before this one are only context (NaN out): their window or the one before holds a gap


def initial_state(config: OnsetConfig) -> OnsetState:
    mean_frames = max(1, round(config.mean_s * config.fps))
    return OnsetState(np.zeros(config.window - config.hop, np.float32), np.zeros(config.bands, np.float32),
                      np.full(config.bands, config.whiten_floor, np.float32), np.zeros(mean_frames, np.float32))


class OnsetDetector:
    """Stateful step: `push(samples) -> onset strengths in [0, 1]`, one per complete frame (possibly none)."""

    def __init__(self, config: OnsetConfig | None = None) -> None:
        self.config = config or OnsetConfig()
        c = self.config
        self.filters = mel_filterbank(c.rate, c.window, c.bands)
        self.window = np.hanning(c.window).astype(np.float32)
        weights = np.exp(-c.tilt * np.arange(c.bands) / c.bands)
        self.weights = (weights / weights.sum()).astype(np.float32)
        self.whiten_decay = 10.0 ** (-3.0 / (c.whiten_s * c.fps)) if c.whiten_s > 0 else 0.0
        self.peak_decay = 0.5 ** (1.0 / (c.peak_s * c.fps))
        self.state = initial_state(c)

    def reset(self) -> None:
        self.state = initial_state(self.config)

    def resume(self, sample: int) -> int:
        """Audio went missing: the next sample pushed is the stream's `sample`. Frames stay on the stream's grid
        (frame i ends at sample (i + 1) * hop, as an unharmed detector cuts them); those whose window, or whose
        predecessor's (the flux), starts before `sample` are NaN: no evidence, not a made-up onset. The running
        peak is kept (decayed over the gap, as the unharmed detector's would have been without louder audio), the
        local mean starts over. Returns the index of the next frame."""
        c, s = self.config, self.state
        index = sample // c.hop
        s.tail = np.zeros(c.window - c.hop + sample % c.hop, np.float32)
        s.peak = s.peak * self.peak_decay ** max(0, index - s.frames)
        s.recent[:], s.recent_sum = 0.0, 0.0
        s.frames, s.valid = index, -(-(sample + c.window) // c.hop)  # first frame whose predecessor is whole
        return index

    def state_dict(self) -> dict[str, Any]:
        """What a restart keeps: the level normalisers (the rest is the last frame's context, lost in the gap)."""
        return {"frames": self.state.frames, "peak": self.state.peak, "peaks": self.state.peaks.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state.frames, self.state.peak = int(state["frames"]), float(state["peak"])
        self.state.peaks = np.asarray(state["peaks"], np.float32).copy()

    def frame_time(self, index: int) -> float:
        """Seconds (from the stream's first sample) that frame `index` stands for: its centre."""
        c = self.config
        return ((index + 1) * c.hop - c.window / 2) / c.rate

    def heard_at(self, index: int) -> float:
        """Seconds of the stream heard when frame `index` is complete: its end."""
        return (index + 1) * self.config.hop / self.config.rate

    def push(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        """Onset strength of the frames completed by `samples` (`last`: no more audio; nothing is pending); NaN for
        the frames just after a gap (`resume`)."""
        c, s = self.config, self.state
        x = np.concatenate([s.tail, np.asarray(samples, np.float32)])
        n = (len(x) - (c.window - c.hop)) // c.hop
        if n <= 0:
            s.tail = x
            return np.zeros(0, np.float32)
        index = np.arange(c.window)[None, :] + c.hop * np.arange(n)[:, None]
        frames = x[index] * self.window
        s.tail = x[n * c.hop:]
        mel = np.abs(np.fft.rfft(frames, axis=1)) @ self.filters  # [n, bands]
        out = np.empty(n, np.float32)
        for i in range(n):  # the recursions are per frame; n is ~2 per 20 ms block
            m = mel[i]
            if self.whiten_decay:
                s.peaks = np.maximum(np.maximum(m, c.whiten_floor), self.whiten_decay * s.peaks)
                m = m / s.peaks
            logmel = np.log1p(c.compression * m)
            flux = float(np.maximum(logmel - s.previous, 0) @ self.weights) if s.frames else 0.0
            s.previous = logmel
            if s.frames < s.valid:
                out[i] = np.nan
                s.frames += 1
                continue
            slot = s.frames % len(s.recent)
            s.recent_sum += flux - float(s.recent[slot])
            s.recent[slot] = flux
            value = max(flux - s.recent_sum / len(s.recent), 0.0)
            s.peak = max(value, s.peak * self.peak_decay, 1e-6)
            out[i] = value / s.peak
            s.frames += 1
        return out
