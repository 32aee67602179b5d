"""Resemblyzer's pretrained GE2E d-vector (`../shared/models/resemblyzer/pretrained.pt`) on our d-vector network.

    wave (16 kHz, [-1, 1]) -> volume raised to -30 dBFS (never lowered) -> 40-band mel *power* spectrogram
    (25 ms Hann / 10 ms, centred frames, no log) -> partials of 160 frames every 77 frames (1.3 per second)
    -> 3 x LSTM 256, last frame -> linear 256 + ReLU -> unit vectors, averaged, unit length

The network is `dvector.py` with `RESEMBLYZER` (last-frame pooling, ReLU); the converter maps the checkpoint's
`lstm.*` / `linear.*` tensors and fails on any other (its GE2E loss scalars `similarity_*` are dropped by name).
The front end follows librosa's `melspectrogram` (Slaney mel scale and area normalisation, zero-padded centred
frames); one step of Resemblyzer's preprocessing is left out: its webrtcvad trimming of silences over 0.2 s.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jax
import numpy as np

from nodes.embedding import dvector
from stream.errors import ModelError

SAMPLE_RATE = 16000
N_FFT, HOP, N_MELS = 400, 160, 40
PARTIAL = 160  # frames
FRAME_STEP = round(SAMPLE_RATE / 1.3 / HOP)  # 77 frames between partials (Resemblyzer's rate 1.3 per second)
MIN_COVERAGE = 0.75  # a last partial with less of its span inside the audio is dropped (unless it is the only one)
TARGET_DBFS = -30.0
RESEMBLYZER = dvector.DVectorConfig(feat_dim=N_MELS, hidden=256, layers=3, embed_dim=256, window=PARTIAL,
                                    pooling="last", relu=True)
IGNORED = ("similarity_weight", "similarity_bias")  # GE2E loss parameters, not part of the encoder


def _slaney_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above."""
    hz = np.asarray(hz, np.float64)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, hz / (200.0 / 3))


def _slaney_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), mel * (200.0 / 3))


@lru_cache(maxsize=1)
def mel_filters() -> np.ndarray:
    """[N_MELS, N_FFT // 2 + 1] triangles equally spaced on the Slaney scale, each of unit area (norm='slaney')."""
    edges = _slaney_hz(np.linspace(0.0, _slaney_mel(SAMPLE_RATE / 2), N_MELS + 2))
    freqs = np.linspace(0.0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    ramps = edges[:, None] - freqs[None, :]
    widths = np.diff(edges)
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    return np.maximum(0.0, np.minimum(lower, upper)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]


def mel_power(wave: np.ndarray) -> np.ndarray:
    """[T, 40] mel power spectrogram, frame t centred on sample t * HOP (T = len // HOP + 1)."""
    padded = np.pad(np.asarray(wave, np.float64), N_FFT // 2)  # zeros: librosa >= 0.10's pad_mode
    count = 1 + (len(padded) - N_FFT) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:count]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    return (power @ mel_filters().T).astype(np.float32)


def raise_volume(wave: np.ndarray) -> np.ndarray:
    """Scale up to TARGET_DBFS RMS if quieter (never down)."""
    rms = np.sqrt(np.mean(np.square(wave, dtype=np.float64)))
    gain_db = TARGET_DBFS - 20 * np.log10(max(rms, 1e-10))
    return wave * 10 ** (gain_db / 20) if gain_db > 0 else wave


def partial_starts(num_samples: int) -> list[int]:
    """First mel frame of each partial (Resemblyzer's `compute_partial_slices`)."""
    frames = int(np.ceil((num_samples + 1) / HOP))
    starts = list(range(0, max(1, frames - PARTIAL + FRAME_STEP + 1), FRAME_STEP))
    coverage = (num_samples - starts[-1] * HOP) / (PARTIAL * HOP)
    return starts[:-1] if coverage < MIN_COVERAGE and len(starts) > 1 else starts


def convert(path: Path) -> dict[str, np.ndarray]:
    """Registry converter for `resemblyzer`: `pretrained.pt` (legacy PyTorch pickle: needs the convert extra)."""
    from stream.models import flatten

    return flatten(convert_tree(path))


def convert_tree(path: Path) -> dict:
    """Our nested d-vector parameters from `pretrained.pt`; fails on a missing or unmapped tensor."""
    import torch  # the convert extra

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
    except Exception as exc:  # torch raises many types for a bad file
        raise ModelError(f"{path}: not Resemblyzer's pretrained.pt ({exc})") from None
    state = {k: v.numpy().astype(np.float32) for k, v in state.items()}
    used: set[str] = set(IGNORED)

    def take(name: str) -> np.ndarray:
        if name not in state:
            raise ModelError(f"{path}: not Resemblyzer's encoder: no tensor {name!r}")
        used.add(name)
        return state[name]

    tree = {f"lstm{i}": {"w_in": take(f"lstm.weight_ih_l{i}").T, "w_rec": take(f"lstm.weight_hh_l{i}").T,
                         "b": take(f"lstm.bias_ih_l{i}") + take(f"lstm.bias_hh_l{i}")}
            for i in range(RESEMBLYZER.layers)}
    tree["embed"] = {"w": take("linear.weight").T, "b": take("linear.bias")}
    if set(state) - used:
        raise ModelError(f"{path}: not Resemblyzer's encoder: unmapped tensors {sorted(set(state) - used)}")
    return tree


@lru_cache(maxsize=1)
def _forward():
    return jax.jit(lambda p, x: dvector.embed(p, x, pooling="last", relu=True))


def embed_waveform(params: dict, wave: np.ndarray) -> np.ndarray:
    """One unit-length 256-d embedding of a 16 kHz waveform (partials in batches of 8: few shapes to compile)."""
    wave = raise_volume(np.asarray(wave, np.float32))
    starts = partial_starts(len(wave))
    wave = np.pad(wave, (0, max(0, (starts[-1] + PARTIAL) * HOP - len(wave))))
    mel = mel_power(wave)
    padded = np.resize(starts, -(-len(starts) // 8) * 8)
    batch = np.stack([mel[s:s + PARTIAL] for s in padded])
    partials = np.asarray(_forward()(params, batch))[: len(starts)]
    mean = partials.mean(axis=0)
    return mean / max(np.linalg.norm(mean), 1e-12)
