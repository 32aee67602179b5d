"""A generated test signal for graphs with no microphone: speech-like voices, chirps and noise bursts with silences.

A pure function of the absolute sample index, so blocks of any size join without clicks and a rerun is
bit-identical. The 6 s pattern repeats; its parts exercise what the graph listens for: two "voices" (harmonic
tones at different pitch with vibrato and a 4 Hz syllable rhythm), a rising chirp, a noise burst, and silences.
"""

from __future__ import annotations

import numpy as np

PERIOD_S = 6.0
AMPLITUDE = 0.3  # peak-ish level, well below clipping
NOISE_SEED = 20260101


# (start s, end s, part, parameter): the pattern within one period.
PATTERN: tuple[tuple[float, float, str, float], ...] = (
    (0.0, 1.2, "voice", 140.0),  # f0 Hz: a low voice
    (1.6, 2.4, "chirp", 0.0),
    (2.9, 3.3, "noise", 0.0),
    (3.8, 5.2, "voice", 220.0),  # a higher voice
)


def _voice(t: np.ndarray, local: np.ndarray, f0: float) -> np.ndarray:
    """Harmonic tone with vibrato and a formant-like spectral tilt, amplitude-modulated at a syllable rate."""
    # Instantaneous frequency f0 * (1 + 0.02 sin(2 pi 5 t)): 2 % vibrato at 5 Hz, integrated into the phase.
    phase = 2 * np.pi * f0 * (t + 0.02 / (2 * np.pi * 5.0) * (1 - np.cos(2 * np.pi * 5.0 * t)))
    tone = sum(np.sin(k * phase) / k for k in range(1, 9))
    syllables = 0.5 * (1 - np.cos(2 * np.pi * 4.0 * local))
    return tone * syllables / 2.0


def _chirp(local: np.ndarray, duration: float) -> np.ndarray:
    """Exponential sweep 300 Hz -> 3 kHz over the part."""
    f_lo, f_hi = 300.0, 3000.0
    k = np.log(f_hi / f_lo) / duration
    return np.sin(2 * np.pi * f_lo * (np.exp(k * local) - 1) / k)


def _noise(index: np.ndarray) -> np.ndarray:
    """White noise that depends only on the sample index (a hash, not a stateful generator)."""
    x = (index.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(NOISE_SEED)) & np.uint64(2**64 - 1)
    x ^= x >> np.uint64(31)
    x = (x * np.uint64(0xBF58476D1CE4E5B9)) & np.uint64(2**64 - 1)
    x ^= x >> np.uint64(29)
    return (x >> np.uint64(11)).astype(np.float64) / 2.0**53 * 2 - 1


def generate(rate: int, start: int, frames: int) -> np.ndarray:
    """Samples [start, start + frames) of the pattern at `rate` Hz, float32 [frames, 1]."""
    index = np.arange(start, start + frames, dtype=np.int64)
    t = index / rate
    within = np.mod(t, PERIOD_S)
    out = np.zeros(frames, np.float64)
    for begin, end, part, param in PATTERN:
        on = (within >= begin) & (within < end)
        if not on.any():
            continue
        local = within[on] - begin
        fade = np.minimum(1.0, np.minimum(local, end - begin - local) / 0.01)  # 10 ms ramps: no clicks
        if part == "voice":
            out[on] = _voice(t[on], local, param) * fade
        elif part == "chirp":
            out[on] = _chirp(local, end - begin) * fade
        else:
            out[on] = _noise(index[on]) * fade
    return (AMPLITUDE * out).astype(np.float32)[:, None]
