"""Streaming chromagram: audio at any rate -> 12-bin treble and bass chroma, ~10.8 frames per second.

Why this shape: audio is resampled to `ANALYSIS_RATE` (11.025 kHz keeps every pitch up to C7 and its first
harmonics) so one fixed STFT and filterbank serve every input rate. Each 0.37 s Hann frame's magnitude spectrum
is mapped to semitone bins (E1..C7) with triangular weights in log frequency, centred on the *estimated tuning*
(the concert pitch drifts a few tens of cents between recordings; a 50-cent error puts every note between two
bins). Semitone energies are log-compressed and whitened across pitch (their running mean over an octave is
subtracted), which removes the broadband part of drums and noise; the rest is folded to 12 pitch classes, twice:
a treble chroma (G2..C7) for the chord's notes and a bass chroma (E1..G3) for its root.

Tuning estimation: the deviation in cents (mod 100) of every spectral peak, found by parabolic interpolation,
averaged as phasors (circular mean) weighted by peak magnitude, with exponential forgetting; the filterbank is
rebuilt when the estimate moves by a `TUNING_STEP_CENTS` step.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import soxr

ANALYSIS_RATE = 11025  # Hz
N_FFT = 4096  # samples at ANALYSIS_RATE: 0.37 s, 2.7 Hz per bin
HOP = 1024  # samples at ANALYSIS_RATE: 92.9 ms between frames
FRAME_RATE = ANALYSIS_RATE / HOP  # frames per second
LOW_MIDI, HIGH_MIDI = 28, 96  # E1 .. C7: the semitone bins
TREBLE = (43, 96)  # G2 .. C7: MIDI range folded into the treble chroma
BASS = (28, 55)  # E1 .. G3: MIDI range folded into the bass chroma
TUNING_STEP_CENTS = 5.0  # the filterbank follows the tuning estimate in steps of this many cents


@dataclass(frozen=True)
class ChromaConfig:
    compression: float = 100.0  # > 0: semitone energies become log(1 + compression * energy / frame max)
    whiten_octaves: float = 1.0  # > 0: width of the running mean (in octaves) subtracted across pitch
    tuning_memory_s: float = 10.0  # > 0: time constant of the running tuning estimate, s


def semitone_filterbank(tuning_cents: float) -> np.ndarray:
    """[semitones, fft bins] triangular weights in log frequency, centred on A4 = 440 Hz * 2^(tuning / 1200)."""
    freqs = np.arange(N_FFT // 2 + 1) * ANALYSIS_RATE / N_FFT
    with np.errstate(divide="ignore"):
        midi = 69.0 + 12.0 * np.log2(freqs / 440.0) - tuning_cents / 100.0
    centres = np.arange(LOW_MIDI, HIGH_MIDI + 1)[:, None]
    weights = np.clip(1.0 - np.abs(midi[None, :] - centres), 0.0, None)
    weights[:, 0] = 0.0
    return (weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-9)).astype(np.float32)


@cache
def _filterbank(step: int) -> np.ndarray:
    return semitone_filterbank(step * TUNING_STEP_CENTS)


@cache
def _folds() -> tuple[np.ndarray, np.ndarray]:
    """[12, semitones] 0/1 matrices folding semitone bins into treble and bass pitch classes (C = 0)."""
    midi = np.arange(LOW_MIDI, HIGH_MIDI + 1)
    onehot = (midi[None, :] % 12 == np.arange(12)[:, None]).astype(np.float32)
    treble = onehot * ((midi >= TREBLE[0]) & (midi <= TREBLE[1]))
    bass = onehot * ((midi >= BASS[0]) & (midi <= BASS[1]))
    return treble, bass


def peak_tuning(magnitude: np.ndarray) -> complex:
    """Sum over spectral peaks of magnitude * exp(2 pi i * cents / 100): the tuning evidence of one frame."""
    m = magnitude[1:-1]
    peaks = np.flatnonzero((m > magnitude[:-2]) & (m >= magnitude[2:]) & (m > 0.05 * m.max(initial=0.0))) + 1
    lo = LOW_MIDI
    peaks = peaks[(peaks * ANALYSIS_RATE / N_FFT > 440.0 * 2 ** ((lo - 69) / 12)) & (peaks < N_FFT // 4)]
    if peaks.size == 0:
        return 0j
    a, b, c = np.log(magnitude[peaks - 1] + 1e-12), np.log(magnitude[peaks] + 1e-12), np.log(magnitude[peaks + 1] + 1e-12)
    delta = 0.5 * (a - c) / np.where(np.abs(a - 2 * b + c) > 1e-12, a - 2 * b + c, 1e-12)
    freq = (peaks + np.clip(delta, -0.5, 0.5)) * ANALYSIS_RATE / N_FFT
    cents = 1200.0 * np.log2(freq / 440.0)
    return complex(np.sum(magnitude[peaks] * np.exp(2j * np.pi * cents / 100.0)))


def fold_chroma(semitones: np.ndarray, config: ChromaConfig) -> tuple[np.ndarray, np.ndarray]:
    """Semitone energies [frames, semitones] -> (treble, bass) chroma [frames, 12], each frame max-normalised."""
    peak = semitones.max(axis=1, keepdims=True)
    logs = np.log1p(config.compression * semitones / np.maximum(peak, 1e-10))
    width = max(1, round(12 * config.whiten_octaves))
    kernel = np.ones(width) / width
    mean = np.stack([np.convolve(row, kernel, mode="same") for row in logs]) if len(logs) else logs
    white = np.clip(logs - mean, 0.0, None)
    treble_fold, bass_fold = _folds()
    treble, bass = white @ treble_fold.T, white @ bass_fold.T
    norm = lambda x: x / np.maximum(x.max(axis=1, keepdims=True), 1e-6)  # noqa: E731
    return norm(treble).astype(np.float32), norm(bass).astype(np.float32)


HISTORY_S = 0.25  # s of input kept to rebuild the resampler after a restart (its delay is tens of ms)


class StreamingChroma:
    """Stateful step: `push(samples)` (mono float32 at `rate` Hz, any block size) -> (treble, bass) chroma frames
    [n, 12] for every complete frame so far. Frame k covers analysis samples [k * HOP, k * HOP + N_FFT), i.e. it is
    centred at `frame_time(k)` seconds of input."""

    def __init__(self, rate: int, config: ChromaConfig | None = None) -> None:
        self.config = config or ChromaConfig()
        self.rate = rate
        self._resampler = soxr.ResampleStream(rate, ANALYSIS_RATE, 1, dtype="float32", quality="HQ") \
            if rate != ANALYSIS_RATE else None
        self._buffer = np.zeros(N_FFT // 2, np.float32)  # half a frame of zeros: frame 0 is centred at t = 0
        self._window = np.hanning(N_FFT).astype(np.float32)
        self._tuning = 0j  # decayed sum of peak phasors
        self.frames = 0  # frames emitted so far
        self._inputs = self._outputs = 0  # samples into and out of the resampler
        self._history = np.zeros(0, np.float32)  # its last HISTORY_S of input, to rebuild it after a restart
        self._skip = 0  # resampled samples to drop: re-made by a rebuilt resampler, analysed already

    @staticmethod
    def frame_time(k: int | np.ndarray) -> float | np.ndarray:
        """Centre of frame k in seconds of input."""
        return k * HOP / ANALYSIS_RATE

    @property
    def tuning_cents(self) -> float:
        """Current tuning estimate relative to A4 = 440 Hz, in [-50, 50) cents."""
        return float(np.angle(self._tuning) / (2 * np.pi) * 100.0) if self._tuning != 0 else 0.0

    def push(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self._resampler:
            return self._analyse(samples)
        self._inputs += len(samples)
        self._history = np.concatenate([self._history, samples.astype(np.float32)])[-round(HISTORY_S * self.rate):]
        return self._analyse(self._resampled(samples))

    def _resampled(self, samples: np.ndarray) -> np.ndarray:
        x = self._resampler.resample_chunk(samples[:, None])[:, 0]
        cut = min(self._skip, len(x))
        self._skip -= cut
        self._outputs += len(x) - cut
        return x[cut:]

    def flush(self) -> tuple[np.ndarray, np.ndarray]:
        """End of stream: drain the resampler and pad half a frame, so the last audio gets its frames."""
        tail = self._resampler.resample_chunk(np.zeros((0, 1), np.float32), last=True)[:, 0] \
            if self._resampler else np.zeros(0, np.float32)
        return self._analyse(np.concatenate([tail, np.zeros(N_FFT // 2, np.float32)]))

    def _analyse(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        buf = np.concatenate([self._buffer, x.astype(np.float32)])
        n = max(0, (len(buf) - N_FFT) // HOP + 1)
        self._buffer = buf[n * HOP:]
        if n == 0:
            return np.zeros((0, 12), np.float32), np.zeros((0, 12), np.float32)
        idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n)[:, None]
        magnitude = np.abs(np.fft.rfft(buf[idx] * self._window, axis=1)).astype(np.float32)
        decay = np.exp(-1.0 / (self.config.tuning_memory_s * FRAME_RATE))
        semitones = np.empty((n, HIGH_MIDI - LOW_MIDI + 1), np.float32)
        for i, frame in enumerate(magnitude):
            self._tuning = self._tuning * decay + peak_tuning(frame)
            step = round(self.tuning_cents / TUNING_STEP_CENTS)
            semitones[i] = _filterbank(step) @ (frame * frame)
        self.frames += n
        return fold_chroma(semitones, self.config)

    def state_dict(self) -> dict[str, Any]:
        """Tuning, frame count, the analysis buffer (under one frame), and the resampler's counts and last input."""
        return {"tuning_re": self._tuning.real, "tuning_im": self._tuning.imag, "frames": self.frames,
                "buffer": self._buffer, "inputs": self._inputs, "outputs": self._outputs, "history": self._history}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore, and rebuild the resampler from its last input: a fresh one would lose the samples it held
        (tens of ms), shifting every later frame off the stream's grid after a restart with its input replayed.
        Its outputs before the checkpoint's count are dropped (sub-sample exact where the rates divide)."""
        self._tuning = complex(state["tuning_re"], state["tuning_im"])
        self.frames = int(state["frames"])
        self._buffer = np.asarray(state["buffer"], np.float32)
        self._inputs, self._outputs = int(state["inputs"]), int(state["outputs"])
        self._history = np.asarray(state["history"], np.float32)
        if self._resampler is None:
            return
        self._resampler = soxr.ResampleStream(self.rate, ANALYSIS_RATE, 1, dtype="float32", quality="HQ")
        first = round((self._inputs - len(self._history)) * ANALYSIS_RATE / self.rate)  # its first output's index
        self._skip, self._outputs = max(0, self._outputs - first), first
        self._buffer = np.concatenate([self._buffer, self._resampled(self._history)])
