"""Synthesised chord progressions for the chord tests: triads of decaying harmonic tones over a bass root."""

from __future__ import annotations

import numpy as np

from nodes.chords.recognize import PITCH_CLASSES


def note(midi: float, seconds: float, rate: int, harmonics: int = 8) -> np.ndarray:
    """A plucked-string-like tone: harmonics with 1/k amplitudes and an exponential decay."""
    t = np.arange(round(seconds * rate)) / rate
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    tone = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, harmonics + 1) if k * f0 < rate / 2 - 500)
    return (tone * np.exp(-t * 1.5)).astype(np.float32)


def progression(labels: list[str], seconds: float, rate: int, detune_cents: float = 0.0) -> np.ndarray:
    """Each Harte label ("C:maj", "A:min") held `seconds`, voiced root-third-fifth around C4 plus the root in the
    bass, all notes shifted by `detune_cents`."""
    parts = []
    for label in labels:
        root, quality = label.split(":")
        r = PITCH_CLASSES.index(root)
        third = 4 if quality == "maj" else 3
        shift = detune_cents / 100
        midis = [60 + r + shift, 60 + r + third + shift, 60 + r + 7 + shift, 36 + r + shift]
        parts.append(sum(note(m, seconds, rate) for m in midis) * 0.1)
    return np.concatenate(parts)
