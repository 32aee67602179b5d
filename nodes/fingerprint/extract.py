"""Streaming fingerprint extraction: audio at any rate in, triplet hashes out as soon as their peaks are final.

A peak is final once `NEIGHBOURHOOD[0] // 2` frames after it are in; an anchor's hashes once every peak of its
target zone (`TARGET_DT[1]` frames) is final, so hashes trail the audio by ~1.6 s. Whole files (`stream
fingerprint add`) and live streams go through the same step, so the index and the queries hash identically.
"""

from __future__ import annotations

import numpy as np
import soxr

from nodes.fingerprint.hashes import HOP, N_FFT, NEIGHBOURHOOD, RATE, TARGET_DT, Hashes, find_peaks, \
    log_spectrogram, triplets

HALF = NEIGHBOURHOOD[0] // 2  # frames of look-ahead (and look-behind) a peak decision needs


class FingerprintExtractor:
    """Stateful step: `push(samples)` (mono float32 at `rate` Hz) -> Hashes of anchors now final; `flush()` ends."""

    def __init__(self, rate: int) -> None:
        self._resampler = soxr.ResampleStream(rate, RATE, 1, dtype="float32", quality="HQ") if rate != RATE else None
        self._audio = np.zeros(0, np.float32)  # samples not yet in a complete frame
        self._spec = np.zeros((0, N_FFT // 2 + 1), np.float32)  # frames kept for peak picking
        self._spec_first = 0  # frame index of _spec[0]
        self._decided = 0  # peaks are final for frames < _decided
        self._t = np.zeros(0, np.int32)  # peaks whose anchor hashes are not all out yet, and their targets
        self._u = np.zeros(0, np.float32)
        self.frames = 0  # STFT frames computed so far

    def push(self, samples: np.ndarray) -> Hashes:
        x = self._resampler.resample_chunk(samples[:, None])[:, 0] if self._resampler else samples
        return self._step(x, last=False)

    def flush(self) -> Hashes:
        tail = self._resampler.resample_chunk(np.zeros((0, 1), np.float32), last=True)[:, 0] \
            if self._resampler else np.zeros(0, np.float32)
        return self._step(tail, last=True)

    def _step(self, x: np.ndarray, last: bool) -> Hashes:
        audio = np.concatenate([self._audio, x.astype(np.float32)])
        spec = log_spectrogram(audio)
        self._audio = audio[len(spec) * HOP:]
        self.frames += len(spec)
        self._spec = np.concatenate([self._spec, spec])
        end = self._spec_first + len(self._spec)  # frames computed
        upto = end if last else end - HALF  # peaks final below this frame
        if upto > self._decided:
            t, u = find_peaks(self._spec, self._spec_first,
                              (self._decided - self._spec_first, upto - self._spec_first))
            self._t, self._u = np.concatenate([self._t, t]), np.concatenate([self._u, u])
            self._decided = upto
        keep = max(0, len(self._spec) - 2 * HALF)  # the next decision looks HALF frames back
        self._spec, self._spec_first = self._spec[keep:], self._spec_first + keep
        ready = len(self._t) if last else int(np.searchsorted(self._t, self._decided - TARGET_DT[1]))
        out = triplets(self._t, self._u, slice(0, ready))
        self._t, self._u = self._t[ready:], self._u[ready:]
        return out
