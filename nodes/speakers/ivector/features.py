"""The i-vector front end: Kaldi MFCC (20 cepstra incl. log-energy) + deltas + delta-deltas, energy VAD, CMVN.

Kaldi's VoxCeleb i-vector recipe (mfcc.conf 30 mel bins, compute-vad with energy threshold 5.5 and mean scale 0.5,
add-deltas window 2) with one change: mean and variance are normalised over the voiced frames of the whole
utterance rather than a sliding 3 s window (our utterances are short).
"""

from __future__ import annotations

import numpy as np

from nodes.features.kaldi import FbankConfig, MfccConfig, mfcc
from stream.errors import AudioError

MFCC = MfccConfig(fbank=FbankConfig(num_mel_bins=30, high_freq=7600.0), num_ceps=20)
FEAT_DIM = 3 * MFCC.num_ceps
WAVE_SCALE = 32768.0  # Kaldi front ends expect int16-range samples (its energy threshold is in those units)
VAD_THRESHOLD = 5.5  # voiced if log-energy > VAD_THRESHOLD + VAD_MEAN_SCALE * mean log-energy (Kaldi compute-vad)
VAD_MEAN_SCALE = 0.5
MIN_FRAMES = 50  # 0.5 s of voiced frames: below this an i-vector is mostly its prior


def deltas(x: np.ndarray, window: int = 2) -> np.ndarray:
    """Regression deltas over +-`window` frames, edges replicated (Kaldi add-deltas)."""
    padded = np.pad(x, ((window, window), (0, 0)), mode="edge")
    n = np.arange(1, window + 1)
    out = sum(k * (padded[window + k: len(x) + window + k] - padded[window - k: len(x) + window - k]) for k in n)
    return out / (2 * float((n**2).sum()))


def voiced(log_energy: np.ndarray) -> np.ndarray:
    """Energy VAD mask [T]: frames louder than a threshold that follows the utterance's mean energy."""
    return log_energy > VAD_THRESHOLD + VAD_MEAN_SCALE * log_energy.mean()


def ivector_features(wave: np.ndarray, what: str = "audio") -> np.ndarray:
    """16 kHz waveform in [-1, 1] -> [T_voiced, 60] float32 features, mean 0 and variance 1 per dimension."""
    ceps = mfcc(np.asarray(wave, np.float32) * WAVE_SCALE, MFCC).astype(np.float64)
    if not np.all(np.isfinite(ceps)):
        raise AudioError(f"{what}: features contain NaN/inf; check the audio for NaN samples")
    d1 = deltas(ceps)
    feats = np.concatenate([ceps, d1, deltas(d1)], axis=1)[voiced(ceps[:, 0])]
    if len(feats) < MIN_FRAMES:
        raise AudioError(f"{what}: {len(feats)} voiced frames; an i-vector needs at least {MIN_FRAMES} "
                         f"({MIN_FRAMES / 100:.1f} s of speech)")
    feats = (feats - feats.mean(axis=0)) / np.maximum(feats.std(axis=0), 1e-3)
    return feats.astype(np.float32)
