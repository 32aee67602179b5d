"""Bring any audio source to the graph's format: channel count, sample rate, fixed block size, capture stamps.

Sources deliver blocks of whatever size, rate and channel count the device or file has. Downstream nodes jit
fixed shapes, so `Conformer` turns them into blocks of exactly `block_frames` frames at the graph's rate, each
stamped with the monotonic capture time (ns) of its first sample, derived from the stamps of the input blocks
it came from (so gaps and drift in the source show in the stamps instead of being smoothed away).
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

import numpy as np
import soxr

from stream.errors import AudioError

MIN_RATE, MAX_RATE = 8_000, 192_000  # Hz; outside this no source or model of ours makes sense


class Block(NamedTuple):
    """Audio as it leaves a source: float32 samples [frames, channels] and the capture time of the first one."""

    samples: np.ndarray
    t_capture_ns: int  # time.monotonic_ns() clock: comparable across processes on one host


def check_rate(rate: int, what: str) -> int:
    """Return `rate` if it is a usable integer rate in Hz, else raise AudioError naming `what`."""
    if not isinstance(rate, int) or isinstance(rate, bool) or not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(
            f"{what} sample rate {rate!r} is not supported: use an integer between {MIN_RATE} and {MAX_RATE} Hz"
        )
    return rate


def check_finite(samples: np.ndarray, where: str) -> None:
    """NaN or infinite samples poison every model downstream: refuse them at the door."""
    if not np.isfinite(samples).all():
        raise AudioError(f"{where} contains NaN or infinite samples: fix or re-encode the audio (e.g. with sox)")


def check_model_audio(x: np.ndarray, sample_rate: int, *, model: str, rate: int, min_samples: int = 0) -> np.ndarray:
    """Float audio in [-1, 1] at `rate` Hz, finite, at least `min_samples` long on its last axis, as float32;
    else an AudioError naming `model` and the fix. Shapes are the caller's business."""
    if sample_rate != rate:
        raise AudioError(f"{model} needs {rate} Hz audio, got {sample_rate} Hz: resample it first")
    if not np.issubdtype(x.dtype, np.floating):
        raise AudioError(f"{model} takes float audio in [-1, 1], got {x.dtype}: divide integer PCM by its full scale")
    if x.shape[-1] < min_samples:
        raise AudioError(f"{model} needs at least {min_samples} samples ({min_samples / rate:.3f} s), "
                         f"got {x.shape[-1]}: pass longer audio")
    if not np.isfinite(x).all():
        raise AudioError("audio contains NaN or infinite samples: fix the source (a decoder or gain stage)")
    return x.astype(np.float32, copy=False)


def mix(samples: np.ndarray, channels: int) -> np.ndarray:
    """Down-mix [frames, n] float32 to mono (channel mean) or stereo (mono duplicated; first two of many).

    For more than two channels the first two are front left/right in WAV and FLAC channel order.
    """
    if samples.ndim != 2 or samples.shape[1] < 1:
        raise AudioError(f"audio must be [frames, channels], got shape {samples.shape}")
    if channels == 1:
        out = samples if samples.shape[1] == 1 else samples.mean(axis=1, keepdims=True)
    elif channels == 2:
        out = np.repeat(samples, 2, axis=1) if samples.shape[1] == 1 else samples[:, :2]
    else:
        raise AudioError(f"channels must be 1 (mono) or 2 (stereo), got {channels}")
    return np.ascontiguousarray(out, dtype=np.float32)


class Conformer:
    """Stateful step: source blocks in (any rate, channels, size) -> fixed-size stamped blocks out.

    `push` may return zero, one or several blocks (the resampler and the re-blocking both buffer); `flush` ends
    the stream and returns what is left as one short block (or none).
    """

    def __init__(self, in_rate: int, out_rate: int, channels: int, block_frames: int) -> None:
        self.in_rate = check_rate(in_rate, "source")
        self.out_rate = check_rate(out_rate, "graph")
        if channels not in (1, 2):
            raise AudioError(f"channels must be 1 (mono) or 2 (stereo), got {channels}")
        if block_frames < 1:
            raise AudioError(f"block size must be at least one frame, got {block_frames}")
        self.channels = channels
        self.block_frames = block_frames
        self._resampler = (
            soxr.ResampleStream(in_rate, out_rate, channels, dtype="float32", quality="HQ")
            if in_rate != out_rate
            else None
        )
        self._anchors: deque[tuple[int, int]] = deque()  # (input frame offset, its capture ns), oldest first
        self._in_frames = 0  # input frames pushed so far
        self._out_frames = 0  # output frames emitted so far (in whole blocks)
        self._pending = np.zeros((0, channels), np.float32)  # resampled frames not yet in a block

    def push(self, block: Block) -> list[Block]:
        samples = mix(block.samples, self.channels)
        if len(samples) == 0:
            return []
        self._anchors.append((self._in_frames, block.t_capture_ns))
        self._in_frames += len(samples)
        return self._emit(self._resample(samples, last=False))

    def flush(self) -> list[Block]:
        """End of stream: drain the resampler; the tail (fewer than `block_frames` frames) comes out as is."""
        blocks = self._emit(self._resample(np.zeros((0, self.channels), np.float32), last=True))
        if len(self._pending):
            blocks.append(Block(self._pending, self._stamp(self._out_frames)))
            self._out_frames += len(self._pending)
            self._pending = np.zeros((0, self.channels), np.float32)
        return blocks

    def _resample(self, samples: np.ndarray, last: bool) -> np.ndarray:
        if self._resampler is None:
            return samples
        return self._resampler.resample_chunk(samples, last=last)

    def _emit(self, resampled: np.ndarray) -> list[Block]:
        pending = np.concatenate([self._pending, resampled]) if len(self._pending) else resampled
        blocks = []
        start = 0
        while len(pending) - start >= self.block_frames:
            blocks.append(Block(pending[start : start + self.block_frames].copy(), self._stamp(self._out_frames)))
            self._out_frames += self.block_frames
            start += self.block_frames
        self._pending = pending[start:].copy()
        return blocks

    def _stamp(self, out_frame: int) -> int:
        """Capture ns of output frame `out_frame`: from the newest input block at or before it (soxr is aligned)."""
        # Input position of the output frame, scaled by out_rate to stay in integers: pos = out_frame * in_rate.
        pos = out_frame * self.in_rate
        while len(self._anchors) > 1 and self._anchors[1][0] * self.out_rate <= pos:
            self._anchors.popleft()
        offset, t_ns = self._anchors[0]
        return t_ns + (pos - offset * self.out_rate) * 1_000_000_000 // (self.in_rate * self.out_rate)
