"""Chord recognition over 24 major/minor triads + N: template emissions, an HMM decoded online with a fixed lag.

Emissions: each chord has a treble template built from the harmonic series of its three notes (a note at pitch
class p also sounds p + 7 and p + 4 through its 3rd and 5th harmonics, so binary templates confuse e.g. C and
Em); the score of a chord is the cosine of the treble chroma with its template plus `bass_weight` times the bass
chroma at its root. N (no chord) scores a constant `no_chord_score` and wins on silence and unpitched frames.
Scores become log-likelihoods through a softmax temperature `sharpness`.

Decoding: Viterbi over the 25 states with a sticky transition matrix (stay with `1 - switch_prob`, else a uniform
jump). `OnlineViterbi` keeps the forward scores and the last `lag` frames of back-pointers; each new frame
decides the frame `lag` frames back by tracing back from the current best state, so the output is the
fixed-lag (bounded-delay) Viterbi path: a chord is announced `lag / FRAME_RATE` seconds after its frame.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from stream.errors import ConfigError

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
LABELS = tuple(f"{p}:maj" if q == 0 else f"{p}:min" for q in (0, 1) for p in PITCH_CLASSES) + ("N",)
NO_CHORD = len(LABELS) - 1


@dataclass(frozen=True)
class ChordConfig:
    harmonic_decay: float = 0.4  # [0, 1): weight of the k-th harmonic is decay^(k-1) in the templates (tuned)
    bass_weight: float = 0.15  # >= 0: how much the bass chroma at the root adds to a chord's score (tuned)
    no_chord_score: float = 0.45  # score of N; chords below it on a frame lose to N
    sharpness: float = 5.0  # > 0: softmax temperature turning scores into log-likelihoods (tuned on the tune half)
    switch_prob: float = 0.05  # (0, 1): per-frame probability of leaving a chord (~10.8 frames per second)
    lag: int = 10  # >= 0 frames: decision delay of the online Viterbi (10 = 0.93 s)

    def __post_init__(self) -> None:
        if not 0.0 <= self.harmonic_decay < 1.0:
            raise ConfigError(f"harmonic_decay must be in [0, 1), got {self.harmonic_decay}")
        if self.bass_weight < 0 or self.sharpness <= 0:
            raise ConfigError(f"bass_weight must be >= 0 and sharpness > 0, got {self.bass_weight}, {self.sharpness}")
        if not 0.0 < self.switch_prob < 1.0:
            raise ConfigError(f"switch_prob must be in (0, 1), got {self.switch_prob}")
        if self.lag < 0:
            raise ConfigError(f"lag must be >= 0 frames, got {self.lag}")


@cache
def chord_templates(harmonic_decay: float, harmonics: int = 6) -> np.ndarray:
    """[24, 12] unit-norm treble templates: C..B major, then C..B minor (read-only; built once: building them
    took half a millisecond, more than the rest of a 20 ms block's work)."""
    offsets = [round(12 * np.log2(k)) % 12 for k in range(1, harmonics + 1)]  # 0, 0, 7, 0, 4, 7
    out = np.zeros((24, 12))
    for quality, third in ((0, 4), (1, 3)):
        for root in range(12):
            for note in (root, root + third, root + 7):
                for k, off in enumerate(offsets):
                    out[quality * 12 + root, (note + off) % 12] += harmonic_decay ** k
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    out.setflags(write=False)
    return out


def chord_scores(treble: np.ndarray, bass: np.ndarray, config: ChordConfig) -> np.ndarray:
    """[frames, 25] scores: cosine with each template + bass at the root, and N's constant."""
    templates = chord_templates(config.harmonic_decay)
    t = treble / np.maximum(np.linalg.norm(treble, axis=1, keepdims=True), 1e-6)
    b = bass / np.maximum(np.linalg.norm(bass, axis=1, keepdims=True), 1e-6)
    scores = t @ templates.T + config.bass_weight * np.tile(b, 2)
    silent = treble.max(axis=1) < 1e-3
    scores[silent] = 0.0
    return np.concatenate([scores, np.full((len(scores), 1), config.no_chord_score)], axis=1)


def log_likelihoods(scores: np.ndarray, sharpness: float) -> np.ndarray:
    z = sharpness * scores
    return z - np.logaddexp.reduce(z, axis=1, keepdims=True)


class OnlineViterbi:
    """Stateful step: `push(loglik [n, states])` -> the states of the frames that are now `lag` frames old."""

    def __init__(self, states: int, switch_prob: float, lag: int) -> None:
        self.lag = lag
        self.log_stay = np.log1p(-switch_prob)
        self.log_jump = np.log(switch_prob / (states - 1))
        self.delta: np.ndarray | None = None  # forward scores of the newest frame
        self.pointers: deque[np.ndarray] = deque()  # back-pointers of the newest `lag` frames
        self.decided = 0  # frames decided so far

    def push(self, loglik: np.ndarray) -> list[int]:
        out: list[int] = []
        for frame in loglik:
            if self.delta is None:
                self.delta, pointer = frame.copy(), np.arange(len(frame))
            else:
                best = int(np.argmax(self.delta))
                jump = self.delta[best] + self.log_jump
                stay = self.delta + self.log_stay
                pointer = np.where(stay >= jump, np.arange(len(frame)), best)
                self.delta = np.maximum(stay, jump) + frame
                self.delta -= self.delta.max()
            self.pointers.append(pointer)
            if len(self.pointers) > self.lag:
                out.append(self._trace(len(self.pointers) - 1))
                self.pointers.popleft()
        return out

    def flush(self) -> list[int]:
        """End of stream: decide the last `lag` frames from the final best path."""
        if self.delta is None:
            return []
        state = int(np.argmax(self.delta))
        path = [state]
        for pointer in reversed(list(self.pointers)[1:]):
            state = int(pointer[state])
            path.append(state)
        self.pointers.clear()
        self.decided += len(path)
        return path[::-1]

    def _trace(self, back: int) -> int:
        state = int(np.argmax(self.delta))
        for pointer in reversed(list(self.pointers)[len(self.pointers) - back:]):
            state = int(pointer[state])
        self.decided += 1
        return state

    def state_dict(self) -> dict[str, Any]:
        return {"delta": self.delta, "pointers": list(self.pointers), "decided": self.decided}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.delta = None if state["delta"] is None else np.asarray(state["delta"])
        self.pointers = deque(np.asarray(p) for p in state["pointers"])
        self.decided = int(state["decided"])
