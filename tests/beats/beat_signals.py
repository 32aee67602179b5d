"""Test audio made here: the BeatNet golden clip, and rendered (or, without fluidsynth, synthesised) grooves."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np

from stream.paths import REPO_ROOT

RATE = 22050


def golden_clip(seconds: float = 2.0, rate: int = RATE) -> np.ndarray:
    """Clicks at 120 BPM over a chord of three sines and a little noise: deterministic, no files."""
    t = np.arange(int(seconds * rate)) / rate
    x = 0.1 * sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))
    for beat in np.arange(0.1, seconds, 0.5):
        k = int(beat * rate)
        x[k:k + 400] += 0.8 * np.exp(-np.arange(400) / 60.0) * np.sin(2 * np.pi * 1800 * t[:400])
    return (x + 0.01 * np.random.default_rng(0).standard_normal(len(t))).astype(np.float32)


def can_render() -> bool:
    from importlib.util import find_spec

    return shutil.which("fluidsynth") is not None and find_spec("pretty_midi") is not None and \
        Path("/usr/share/sounds/sf2/FluidR3_GM.sf2").is_file()


def music_render():
    """bench/music_render.py as a module (the renderer of the development data)."""
    sys.path.insert(0, str(REPO_ROOT / "bench"))
    try:
        import music_render
    finally:
        sys.path.pop(0)
    return music_render


def drum_groove(bpm_before: float, bpm_after: float, change_s: float, seconds: float, seed: int = 0,
                rate: int = RATE) -> tuple[np.ndarray, np.ndarray]:
    """Kick on beats 1 and 3, snare on 2 and 4, hats on eighths, synthesised; the tempo steps at `change_s`.
    Returns (audio, beat times)."""
    rng = np.random.default_rng(seed)
    beats, t = [], 0.0
    while t < seconds:
        beats.append(t)
        t += 60.0 / (bpm_before if t < change_s else bpm_after)
    beats = np.asarray(beats)
    x = np.zeros(int(seconds * rate) + rate, np.float32)
    n = np.arange(int(0.25 * rate)) / rate

    def hit(at: float, sound: np.ndarray) -> None:
        k = int(at * rate)
        x[k:k + len(sound)] += sound[: len(x) - k]

    kick = np.sin(2 * np.pi * (50 + 100 * np.exp(-n * 30)) * n) * np.exp(-n * 12)
    snare = rng.standard_normal(len(n)) * np.exp(-n * 25) * 0.6
    hat = rng.standard_normal(len(n)) * np.exp(-n * 80) * 0.15
    for i, b in enumerate(beats):
        hit(b, kick if i % 2 == 0 else snare)
        hit(b, hat)
        if i + 1 < len(beats):
            hit((b + beats[i + 1]) / 2, hat)
    return (0.5 * x[: int(seconds * rate)] / np.abs(x).max()).astype(np.float32), beats
