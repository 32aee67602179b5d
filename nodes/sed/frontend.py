"""YAMNet's log-mel front end: 16 kHz audio -> [frames, 64] log-mel, 25 ms window, 10 ms hop; batch and streaming.

Figure, per frame: 400 samples x periodic Hann -> centred in 512 zeros -> magnitude DFT (257 bins) -> 64 HTK-mel
triangles 125-7500 Hz (TensorFlow's `linear_to_mel_weight_matrix`, DC bin zeroed) -> log(mel + 0.001).
Frames start every 160 samples from the first one, with no padding (YAMNet's `tf.signal.stft(pad_end=False)`).

Two arithmetics, one figure:
- "tflite" (default): what `yamnet.tflite` computes. Its converter (dynamic-range quantisation) stored the DFT and
  mel matrices as int8, and LiteRT's XNNPACK kernels quantise each frame to int8 on the fly (per row, asymmetric,
  "qd8"), so the spectrum has a ~40 dB floor below each frame's peak. We redo that integer arithmetic exactly, in
  XLA (int8 dots; max |diff| vs the model's own log-mel output: 2e-6 on real clips), so our scores match the
  shipped model's. Calls are padded to power-of-two frame counts (16 .. 1024): one compile per size.
- "float": the same figure in float64 NumPy, as YAMNet was trained (`features.py`). On tonal sounds (alarms,
  sirens) it differs from "tflite" by up to ~4 log units in the quiet bins.

Every frame depends only on its own 400 samples, so `StreamingLogMel` equals `log_mel` on the same audio.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from stream.errors import AudioError

SAMPLE_RATE = 16000  # Hz
MEL_BINS = 64
HOP = 160  # samples (10 ms)
WINDOW = 400  # samples (25 ms)
FFT = 512
MEL_LOW, MEL_HIGH = 125.0, 7500.0  # Hz, band edges of the first and last triangle
LOG_OFFSET = 0.001
Arithmetic = Literal["tflite", "float"]
ARITHMETICS = ("tflite", "float")


def hann_window() -> np.ndarray:
    """Periodic Hann of WINDOW samples (float64)."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WINDOW) / WINDOW)


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log1p(np.asarray(hz, np.float64) / 700.0)


def mel_matrix() -> np.ndarray:
    """[257, 64] HTK-mel triangles over the rfft bins, first (DC) row zero: TensorFlow's weight matrix."""
    bins_mel = _hz_to_mel(np.linspace(0.0, SAMPLE_RATE / 2, FFT // 2 + 1)[1:])[:, None]
    edges = np.linspace(_hz_to_mel(MEL_LOW), _hz_to_mel(MEL_HIGH), MEL_BINS + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    weights = np.maximum(0.0, np.minimum((bins_mel - lower) / (center - lower), (upper - bins_mel) / (upper - center)))
    return np.concatenate([np.zeros((1, MEL_BINS)), weights])


def dft_matrices() -> tuple[np.ndarray, np.ndarray]:
    """Real and imaginary parts [512, 257] of the DFT restricted to the rfft bins (float64)."""
    angle = 2 * np.pi * np.outer(np.arange(FFT), np.arange(FFT // 2 + 1)) / FFT
    return np.cos(angle), np.sin(angle)


def quantize_weights(w: np.ndarray) -> tuple[np.ndarray, np.float32]:
    """Symmetric per-tensor int8, as the TFLite converter stores a constant matrix: (int8 values, float32 scale)."""
    scale = np.float32(np.abs(w).max() / 127.0)
    return np.round(w / scale).astype(np.int8), scale


def quantize_rows(x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """XNNPACK's dynamic "qd8" quantisation of float32 rows (last axis): (q int8, zero point int32, 1/scale).

    Each row's range [min(0, lo), max(0, hi)] maps onto int8 [-128, 127] with an integer zero point; rounding is to
    nearest even; x ~ (q - zero) / scale within one step.
    """
    lo = jnp.minimum(0.0, x.min(-1, keepdims=True))
    hi = jnp.maximum(0.0, x.max(-1, keepdims=True))
    scale = jnp.where(lo == hi, 1.0, 255.0 / jnp.where(lo == hi, 1.0, hi - lo))
    zero = jnp.where((-128 + lo * scale) + (127 + hi * scale) > 0, -128 - lo * scale, 127 - hi * scale)
    zero = jnp.rint(jnp.clip(zero, -128, 127))
    q = jnp.clip(jnp.rint(x * scale) + zero, -128, 127)
    return q.astype(jnp.int8), zero.astype(jnp.int32), 1.0 / scale


def int8_matmul(x: jax.Array, kernel: jax.Array, colsum: jax.Array, scale: jax.Array) -> jax.Array:
    """A dynamic-range int8 layer without bias: rows of x quantised, int8 x int8 -> int32 products (exact), the zero
    point taken out as zero x column sum of the kernel, rescaled by the row step and the per-column weight scale."""
    q, zero, step = quantize_rows(x)
    acc = jnp.matmul(q, kernel, preferred_element_type=jnp.int32) - zero * colsum
    return acc.astype(jnp.float32) * (step * scale)


def _tflite_log_mel(frames: jax.Array, c: dict[str, jax.Array]) -> jax.Array:
    """[n, 400] raw frames -> [n, 64] log-mel in the file's arithmetic."""
    spectrum = int8_matmul(frames * c["window"], c["dft"], c["dft_colsum"], c["dft_scale"])
    real, imag = spectrum[:, : FFT // 2 + 1], spectrum[:, FFT // 2 + 1 :]
    magnitude = jnp.sqrt(real * real + imag * imag)
    return jnp.log(int8_matmul(magnitude, c["mel"], c["mel_colsum"], c["mel_scale"]) + LOG_OFFSET)


_tflite_log_mel_jit = jax.jit(_tflite_log_mel)
_MAX_ROWS = 1024  # frames per call; calls are padded to a power of two >= 16 rows (one compile per size)


class _Constants:
    """Matrices of both arithmetics, built once per process. The DFT keeps only the 400 rows the centred frame
    meets (the 56 + 56 padding samples are zeros, and add nothing to a row's quantisation range either)."""

    def __init__(self) -> None:
        self.window32 = hann_window().astype(np.float32)
        self.window64 = hann_window()
        real, imag = dft_matrices()
        q_real, s_real = quantize_weights(real)
        q_imag, s_imag = quantize_weights(imag)
        self.dft_q = np.concatenate([q_real, q_imag], axis=1).astype(np.float32)  # [512, 514], the file's int8
        self.dft_scale = np.concatenate([np.full(257, s_real), np.full(257, s_imag)]).astype(np.float32)
        frame = slice((FFT - WINDOW) // 2, (FFT + WINDOW) // 2)
        self.dft64_frame = np.ascontiguousarray(np.concatenate([real, imag], axis=1)[frame])  # [400, 514]
        self.mel64 = mel_matrix()
        mel_q, self.mel_scale = quantize_weights(self.mel64.astype(np.float32))
        self.mel_q = mel_q.astype(np.float32)
        dft_frame = self.dft_q[frame].astype(np.int8)
        self.tflite = jax.device_put({
            "window": self.window32, "dft": dft_frame, "dft_colsum": dft_frame.astype(np.int32).sum(0),
            "dft_scale": self.dft_scale, "mel": mel_q, "mel_colsum": mel_q.astype(np.int32).sum(0),
            "mel_scale": np.full(MEL_BINS, self.mel_scale, np.float32)})


_CONSTANTS: _Constants | None = None


def _constants() -> _Constants:
    global _CONSTANTS
    if _CONSTANTS is None:
        _CONSTANTS = _Constants()
    return _CONSTANTS


def _check(waveform: np.ndarray) -> np.ndarray:
    x = np.asarray(waveform)
    if x.ndim != 1:
        raise AudioError(f"YAMNet's front end takes mono audio as a 1-D array, got shape {x.shape}: down-mix it")
    if not np.issubdtype(x.dtype, np.floating):
        raise AudioError(f"YAMNet takes float audio in [-1, 1], got {x.dtype}: divide integer PCM by its full scale")
    if not np.isfinite(x).all():
        raise AudioError("audio contains NaN or infinite samples: fix the source (a decoder or gain stage)")
    return x


def frames_to_log_mel(frames: np.ndarray, arithmetic: Arithmetic = "tflite") -> np.ndarray:
    """[n, 400] raw sample frames -> [n, 64] float32 log-mel."""
    c = _constants()
    if arithmetic == "float":
        spectrum = (frames.astype(np.float64) * c.window64) @ c.dft64_frame
        magnitude = np.hypot(spectrum[:, :257], spectrum[:, 257:])
        return np.log(magnitude @ c.mel64 + LOG_OFFSET).astype(np.float32)
    if arithmetic != "tflite":
        raise ValueError(f"arithmetic must be one of {ARITHMETICS}, got {arithmetic!r}")
    out = []
    for start in range(0, len(frames), _MAX_ROWS):
        chunk = np.asarray(frames[start : start + _MAX_ROWS], np.float32)
        rows = max(16, 1 << (len(chunk) - 1).bit_length())
        padded = np.concatenate([chunk, np.zeros((rows - len(chunk), WINDOW), np.float32)])
        out.append(np.asarray(_tflite_log_mel_jit(padded, c.tflite))[: len(chunk)])
    return np.concatenate(out) if out else np.zeros((0, MEL_BINS), np.float32)


def frame_count(samples: int) -> int:
    """Complete 25 ms frames in `samples` samples (0 if shorter than one window)."""
    return 0 if samples < WINDOW else 1 + (samples - WINDOW) // HOP


def _frames(x: np.ndarray) -> np.ndarray:
    n = frame_count(len(x))
    index = np.arange(n)[:, None] * HOP + np.arange(WINDOW)[None, :]
    return x[index]


def log_mel(waveform: np.ndarray, arithmetic: Arithmetic = "tflite") -> np.ndarray:
    """[samples] float audio at 16 kHz in [-1, 1] -> [frames, 64] float32 log-mel (frames = 1 + (n - 400) // 160)."""
    return frames_to_log_mel(_frames(_check(waveform)), arithmetic)


class StreamingLogMel:
    """Log-mel of audio pushed in pieces of any size; each push returns the frames it completed.

    Keeps the samples of the next frame not yet complete (at most 399 + the hop remainder), so the concatenated
    outputs equal `log_mel` of the concatenated input, frame for frame.
    """

    def __init__(self, arithmetic: Arithmetic = "tflite") -> None:
        if arithmetic not in ARITHMETICS:
            raise ValueError(f"arithmetic must be one of {ARITHMETICS}, got {arithmetic!r}")
        self.arithmetic = arithmetic
        self.reset()

    def reset(self) -> None:
        self._pending = np.zeros(0, np.float32)  # samples from the start of the next frame on

    def push(self, samples: np.ndarray) -> np.ndarray:
        """[n] float samples -> [new_frames, 64] log-mel (possibly zero frames)."""
        x = np.concatenate([self._pending, _check(samples).astype(np.float32, copy=False)])
        frames = _frames(x)
        self._pending = x[len(frames) * HOP :]
        return frames_to_log_mel(frames, self.arithmetic)
