"""Kaldi's `compute-fbank-feats` / `compute-mfcc-feats` in NumPy (snip_edges framing, povey window, dither 0).

Why NumPy and not JAX: features are computed on small live chunks (10-100 ms), where a jitted call costs more in
dispatch than the FFT itself (`bench/embedding_features.py` measures both). Everything here is a pure function of
the waveform; the waveform's scale is the caller's (Kaldi models such as CAM++ expect int16 scale, i.e. x32768).

Per frame (Kaldi's order): cut 25 ms every 10 ms -> remove DC -> raw log-energy (MFCC only) -> pre-emphasis ->
povey window -> zero-pad to 512 -> |FFT|^2 -> triangular mel banks on Kaldi's mel scale -> log (floored at float
epsilon). MFCC adds a DCT-II, cepstral liftering and log-energy in place of C0.

Arithmetic is float64 (output float32): Kaldi's own float32 FFT loses up to ~5e-3 (log domain) on mel bins
60-100 dB below the loudest bin of a loud frame; float64 keeps every bin exact to float32 output precision.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from stream.errors import AudioError, ConfigError

EPS = float(np.finfo(np.float32).eps)  # Kaldi's log floor


@dataclass(frozen=True)
class FbankConfig:
    """Kaldi fbank options (defaults = what CAM++, ECAPA and pyannote's embedding models were trained with)."""

    sample_rate: int = 16000  # Hz
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    num_mel_bins: int = 80
    low_freq: float = 20.0  # Hz, lower edge of the first mel triangle
    high_freq: float = 0.0  # Hz; <= 0 means Nyquist + high_freq (Kaldi's convention)
    preemph_coeff: float = 0.97
    remove_dc_offset: bool = True
    povey_exponent: float = 0.85  # povey window = hann ** 0.85

    def __post_init__(self) -> None:
        nyquist = self.sample_rate / 2
        high = self.high_freq if self.high_freq > 0 else nyquist + self.high_freq
        if self.sample_rate <= 0 or self.frame_length_ms <= 0 or self.frame_shift_ms <= 0:
            raise ConfigError("sample_rate, frame_length_ms and frame_shift_ms must be positive")
        if not 0 <= self.low_freq < high <= nyquist:
            raise ConfigError(f"need 0 <= low_freq < high_freq <= {nyquist} Hz, got {self.low_freq}, {high}")
        if self.num_mel_bins < 3:
            raise ConfigError(f"num_mel_bins must be >= 3, got {self.num_mel_bins}")

    @property
    def frame_length(self) -> int:
        """Samples per frame (400 at 16 kHz)."""
        return int(self.sample_rate * self.frame_length_ms / 1000)

    @property
    def frame_shift(self) -> int:
        """Samples between frame starts (160 at 16 kHz)."""
        return int(self.sample_rate * self.frame_shift_ms / 1000)

    @property
    def fft_size(self) -> int:
        return 1 << (self.frame_length - 1).bit_length()


@dataclass(frozen=True)
class MfccConfig:
    """Kaldi MFCC options: a fbank front end (23 mel bins by default) plus DCT, lifter and energy."""

    fbank: FbankConfig = FbankConfig(num_mel_bins=23)
    num_ceps: int = 13
    cepstral_lifter: float = 22.0  # 0 disables liftering
    use_energy: bool = True  # replace C0 by the frame's log-energy (before pre-emphasis)
    energy_floor: float = 0.0  # floor on the energy (linear), 0 = only the float-epsilon floor

    def __post_init__(self) -> None:
        if not 1 <= self.num_ceps <= self.fbank.num_mel_bins:
            raise ConfigError(f"num_ceps must be in [1, {self.fbank.num_mel_bins}], got {self.num_ceps}")


def num_frames(num_samples: int, cfg: FbankConfig) -> int:
    """Frames Kaldi produces with snip_edges=True: only whole frames, none padded."""
    if num_samples < cfg.frame_length:
        return 0
    return 1 + (num_samples - cfg.frame_length) // cfg.frame_shift


def _kaldi_mel(freq: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log(1.0 + np.asarray(freq, dtype=np.float64) / 700.0)


@lru_cache(maxsize=8)
def mel_banks(cfg: FbankConfig) -> np.ndarray:
    """[fft_size/2 + 1, num_mel_bins] triangular weights on Kaldi's mel scale (the Nyquist bin gets 0)."""
    nyquist = cfg.sample_rate / 2
    high = cfg.high_freq if cfg.high_freq > 0 else nyquist + cfg.high_freq
    mel_low, mel_high = _kaldi_mel(cfg.low_freq), _kaldi_mel(high)
    delta = (mel_high - mel_low) / (cfg.num_mel_bins + 1)
    left = mel_low + delta * np.arange(cfg.num_mel_bins)
    center, right = left + delta, left + 2 * delta
    mel = _kaldi_mel(np.arange(cfg.fft_size // 2) * cfg.sample_rate / cfg.fft_size)[:, None]
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    weights = np.where((mel > left) & (mel < right), np.where(mel <= center, up, down), 0.0)
    return np.vstack([weights, np.zeros((1, cfg.num_mel_bins))])


@lru_cache(maxsize=8)
def povey_window(cfg: FbankConfig) -> np.ndarray:
    n = np.arange(cfg.frame_length)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / (cfg.frame_length - 1))
    return hann**cfg.povey_exponent


@lru_cache(maxsize=8)
def dct_matrix(num_mel_bins: int, num_ceps: int, lifter: float) -> np.ndarray:
    """[num_mel_bins, num_ceps] orthonormal DCT-II (Kaldi's), with cepstral liftering folded in."""
    k = np.arange(num_ceps)[None, :]
    n = np.arange(num_mel_bins)[:, None]
    dct = np.sqrt(2.0 / num_mel_bins) * np.cos(np.pi / num_mel_bins * (n + 0.5) * k)
    dct[:, 0] = np.sqrt(1.0 / num_mel_bins)
    if lifter > 0:
        dct = dct * (1.0 + 0.5 * lifter * np.sin(np.pi * np.arange(num_ceps) / lifter))[None, :]
    return dct


def frames(wave: np.ndarray, cfg: FbankConfig) -> np.ndarray:
    """[num_frames, frame_length] float32 view-copy of the snip_edges frames of a 1-D waveform."""
    wave = check_wave(wave)
    count = num_frames(len(wave), cfg)
    idx = np.arange(count)[:, None] * cfg.frame_shift + np.arange(cfg.frame_length)[None, :]
    return wave[idx]


def check_wave(wave: np.ndarray) -> np.ndarray:
    """A 1-D finite float32 waveform, or an AudioError saying what is wrong."""
    wave = np.asarray(wave)
    if wave.ndim != 1:
        raise AudioError(f"expected a 1-D mono waveform, got shape {wave.shape}; down-mix channels first")
    if not np.issubdtype(wave.dtype, np.floating) and not np.issubdtype(wave.dtype, np.integer):
        raise AudioError(f"waveform dtype {wave.dtype} is not numeric")
    wave = wave.astype(np.float32, copy=False)
    if not np.all(np.isfinite(wave)):
        raise AudioError("waveform contains NaN or infinite samples")
    return wave


def _prepare(framed: np.ndarray, cfg: FbankConfig) -> tuple[np.ndarray, np.ndarray]:
    """DC removal, log-energy, pre-emphasis, window: returns (windowed frames, log-energy per frame)."""
    x = framed.astype(np.float64, copy=True)
    if cfg.remove_dc_offset:
        x -= x.mean(axis=1, keepdims=True)
    log_energy = np.log(np.maximum((x * x).sum(axis=1), EPS))
    if cfg.preemph_coeff != 0:
        x[:, 1:] -= cfg.preemph_coeff * x[:, :-1]
        x[:, 0] -= cfg.preemph_coeff * x[:, 0]
    return x * povey_window(cfg), log_energy


def _log_mel(windowed: np.ndarray, cfg: FbankConfig) -> np.ndarray:
    spectrum = np.fft.rfft(windowed, n=cfg.fft_size, axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    # einsum, not BLAS `@`: each row's sum order must not depend on how many frames a chunk holds, so that
    # streaming output is bit-identical to offline output.
    mel = np.einsum("nf,fm->nm", power, mel_banks(cfg), optimize=False)
    return np.log(np.maximum(mel, EPS))


def fbank_frames(framed: np.ndarray, cfg: FbankConfig) -> np.ndarray:
    """[N, frame_length] raw frames -> [N, num_mel_bins] log-mel energies."""
    windowed, _ = _prepare(framed, cfg)
    return _log_mel(windowed, cfg).astype(np.float32)


def mfcc_frames(framed: np.ndarray, cfg: MfccConfig) -> np.ndarray:
    """[N, frame_length] raw frames -> [N, num_ceps] MFCCs."""
    windowed, log_energy = _prepare(framed, cfg.fbank)
    dct = dct_matrix(cfg.fbank.num_mel_bins, cfg.num_ceps, cfg.cepstral_lifter)
    ceps = np.einsum("nm,mc->nc", _log_mel(windowed, cfg.fbank), dct, optimize=False)
    if cfg.use_energy:
        if cfg.energy_floor > 0:
            log_energy = np.maximum(log_energy, np.log(cfg.energy_floor))
        ceps[:, 0] = log_energy
    return ceps.astype(np.float32)


def fbank(wave: np.ndarray, cfg: FbankConfig = FbankConfig()) -> np.ndarray:
    """1-D waveform -> [num_frames, num_mel_bins] float32 Kaldi log-mel fbank."""
    return fbank_frames(frames(wave, cfg), cfg)


def mfcc(wave: np.ndarray, cfg: MfccConfig = MfccConfig()) -> np.ndarray:
    """1-D waveform -> [num_frames, num_ceps] float32 Kaldi MFCC."""
    return mfcc_frames(frames(wave, cfg.fbank), cfg)
