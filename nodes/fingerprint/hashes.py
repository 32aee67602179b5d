"""Constellation peaks and speed-invariant triplet hashes (the fingerprint of a stretch of audio).

Peaks: local maxima of the log-magnitude STFT (8 kHz, 128 ms window, 16 ms hop) over a 0.24 s x 120 Hz
neighbourhood, above the frame's median by `PEAK_DB`, kept between 150 Hz and 3.5 kHz; each peak's frequency is
refined by parabolic interpolation and expressed in log frequency `u` (24 steps per octave above 150 Hz).

Why triplets: playing audio 5 % faster multiplies every frequency by 1.05 and divides every time by 1.05, so the
classic (f1, f2, dt) pair hash stops matching. In log frequency a speed change is a shift, so differences of `u`
are invariant, and so is a ratio of time differences. A hash is an anchor peak and two later peaks in its target
zone: (u2 - u1, u3 - u1, dt12 / dt13) are exact invariants, plus two coarse cells that change little with speed
(log2 dt13 in quarter octaves, u1 in quarter octaves) and make the hash specific. Values near a cell edge are
looked up on both sides (`probe`), so quantisation never decides a match. The anchor's time and `u1` travel with
each hash: the matcher gets the speed from `u1` and the time offset from `t1`.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations, product

import numpy as np
from scipy.ndimage import maximum_filter

RATE = 8000  # Hz the fingerprinter analyses at
N_FFT = 1024  # samples: 128 ms
HOP = 128  # samples: 16 ms per frame
FRAME_S = HOP / RATE
F_LOW, F_HIGH = 150.0, 3500.0  # Hz: peaks outside are dropped (5 % speed keeps most of the band)
STEPS_PER_OCTAVE = 24  # resolution of log frequency u
PEAK_DB = 10.0  # a peak stands this far above its frame's median log magnitude
NEIGHBOURHOOD = (15, 15)  # (frames, bins) over which a peak is the maximum: 0.24 s x 117 Hz
TARGET_DT = (4, 90)  # frames: a target peak follows its anchor by 64 ms .. 1.44 s
MIN_DT13 = 16  # frames: the far target is at least 0.26 s after the anchor (time ratio precision)
TARGET_DU = 18.0  # |u2 - u1| <= this (3/4 octave)
FAN_OUT = 5  # targets per anchor (the first ones in the zone): C(5, 2) = 10 triplets per anchor
LOOK = 48  # peaks after an anchor searched for its targets (~2 s of peaks at the usual density)
EDGE = 0.2  # a value within this fraction of a cell edge is also looked up in the neighbouring cell

# hash layout: (du12, du13, ratio, log dt13, u1) cells, least significant first
DU_CELLS = 2 * int(TARGET_DU) + 3
RATIO_CELLS = 16
LOGDT_CELLS = 16  # quarter octaves of dt13 from MIN_DT13
U1_CELLS = 24  # quarter octaves of u1 (with room for 5 % speed beyond F_HIGH)
SIZES = (DU_CELLS, DU_CELLS, RATIO_CELLS, LOGDT_CELLS, U1_CELLS)


_WINDOW = np.hanning(N_FFT).astype(np.float32)


@dataclass(frozen=True)
class Hashes:
    """Triplet hashes of a stretch of audio: each has its anchor's frame `t1`, log frequency `u1` and `dt13`."""

    hash: np.ndarray  # int64 [n]
    t1: np.ndarray  # int32 [n] frames
    u1: np.ndarray  # float32 [n]
    dt13: np.ndarray  # int16 [n] frames
    values: np.ndarray  # float32 [n, 5]: the cell positions before flooring (what `probe` needs)

    @staticmethod
    def empty() -> Hashes:
        return Hashes(np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32), np.zeros(0, np.int16),
                      np.zeros((0, len(SIZES)), np.float32))

    @staticmethod
    def concat(parts: list[Hashes]) -> Hashes:
        if not parts:
            return Hashes.empty()
        return Hashes(*(np.concatenate([getattr(p, f) for p in parts])
                        for f in ("hash", "t1", "u1", "dt13", "values")))


def log_spectrogram(audio: np.ndarray) -> np.ndarray:
    """[frames, bins] log magnitude (dB-like) of 8 kHz audio; frame k starts at sample k * HOP."""
    n = 1 + (len(audio) - N_FFT) // HOP if len(audio) >= N_FFT else 0
    if n == 0:
        return np.zeros((0, N_FFT // 2 + 1), np.float32)
    frames = audio[np.arange(N_FFT)[None, :] + HOP * np.arange(n)[:, None]] * _WINDOW
    return (10 * np.log10(np.abs(np.fft.rfft(frames, axis=1)) ** 2 + 1e-12)).astype(np.float32)


def find_peaks(spec: np.ndarray, first_frame: int, valid: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Peaks of `spec` [frames, bins] whose frame index lies in [valid[0], valid[1]): (t frames counted from
    `first_frame`, u log frequency), in time order. `valid` excludes the edges where the neighbourhood is cut."""
    lo, hi = int(np.ceil(F_LOW * N_FFT / RATE)), int(F_HIGH * N_FFT / RATE)
    band = spec[:, lo - 1:hi + 1]  # one bin either side for the interpolation
    local = maximum_filter(band, size=NEIGHBOURHOOD, mode="constant", cval=-np.inf)
    floor = np.median(band, axis=1, keepdims=True) + PEAK_DB
    is_peak = (band == local) & (band > floor)
    is_peak[:, 0] = is_peak[:, -1] = False
    is_peak[:valid[0]] = is_peak[valid[1]:] = False
    t, k = np.nonzero(is_peak)
    k = k + lo - 1
    a, b, c = spec[t, k - 1], spec[t, k], spec[t, k + 1]
    den = a - 2 * b + c
    delta = np.where(np.abs(den) > 1e-9, 0.5 * (a - c) / np.where(np.abs(den) > 1e-9, den, 1.0), 0.0)
    freq = (k + np.clip(delta, -0.5, 0.5)) * RATE / N_FFT
    return (t + first_frame).astype(np.int32), (STEPS_PER_OCTAVE * np.log2(freq / F_LOW)).astype(np.float32)


def triplets(t: np.ndarray, u: np.ndarray, anchors: slice | None = None) -> Hashes:
    """Triplet hashes of peaks (t, u) in time order; anchors restricted to `anchors` (indices) when given.
    An anchor needs the peaks up to TARGET_DT[1] frames after it: callers give anchors that far from the end."""
    first, last = (0, len(t)) if anchors is None else (anchors.start, anchors.stop)
    if last <= first:
        return Hashes.empty()
    i = np.arange(first, last)[:, None]
    j = i + np.arange(1, LOOK + 1)[None, :]  # the next LOOK peaks of each anchor
    inside = j < len(t)
    jc = np.minimum(j, len(t) - 1)
    dt, du = t[jc] - t[i], u[jc] - u[i]
    zone = inside & (dt >= TARGET_DT[0]) & (dt <= TARGET_DT[1]) & (np.abs(du) <= TARGET_DU)
    rank = np.cumsum(zone, axis=1)
    chosen = np.full((len(i), FAN_OUT), -1)  # the first FAN_OUT peaks in each anchor's zone
    rows, cols = np.nonzero(zone & (rank <= FAN_OUT))
    chosen[rows, rank[rows, cols] - 1] = jc[rows, cols]
    pa, pb = np.array(list(combinations(range(FAN_OUT), 2))).T
    a, b = chosen[:, pa].ravel(), chosen[:, pb].ravel()
    i = np.repeat(i[:, 0], len(pa))
    keep = (a >= 0) & (b >= 0)
    i, a, b = i[keep], a[keep], b[keep]
    keep = (t[b] - t[i] >= MIN_DT13) & (t[b] > t[a])
    i, a, b = i[keep], a[keep], b[keep]
    if len(i) == 0:
        return Hashes.empty()
    dt13 = (t[b] - t[i]).astype(np.int16)
    values = np.stack([u[a] - u[i] + TARGET_DU + 1, u[b] - u[i] + TARGET_DU + 1, (t[a] - t[i]) / dt13 * RATIO_CELLS,
                       4 * np.log2(dt13 / MIN_DT13), u[i] / 6 + 1], axis=1).astype(np.float32)
    return Hashes(pack(list(np.floor(values).astype(np.int64).T)), t[i], u[i], dt13, values)


def pack(cells: list[np.ndarray]) -> np.ndarray:
    """Cells (each clipped to its size) -> one int64 per hash."""
    out = np.zeros(len(cells[0]), np.int64)
    for c, size in zip(reversed(cells), reversed(SIZES)):
        out = out * size + np.minimum(np.maximum(c, 0), size - 1)
    return out


def probe(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Query keys for hashes given by their cell positions `values` [n, 5] (before flooring): every combination of
    a value's cell and, when it lies within EDGE of a cell edge, the nearer neighbouring cell.
    Returns (keys, index of the hash each key belongs to)."""
    cells = np.floor(values).astype(np.int64)
    frac = values - cells
    side = np.where(frac < 0.5, -1, 1)
    near = (frac < EDGE) | (frac > 1 - EDGE)
    flips = np.array(list(product((0, 1), repeat=values.shape[1])), bool)  # [32, 5]: which values take a neighbour
    owners, combo = np.nonzero((near[:, None, :] | ~flips[None]).all(axis=2))  # combinations every flip allows
    return pack(list((cells[owners] + side[owners] * flips[combo]).T)), owners


def unpack(hash_: np.ndarray) -> list[np.ndarray]:
    out = []
    for size in SIZES:
        out.append(hash_ % size)
        hash_ = hash_ // size
    return out
