"""ChordTracker: mono audio in, chord changes out (chroma -> template scores -> fixed-lag Viterbi).

The one stateful step behind the live node and `stream chords`: `push(samples)` returns the chord changes decided
so far, each at the time (s of input) its chord starts; `flush()` ends the stream and decides the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nodes.chords.chroma import ANALYSIS_RATE, HOP, N_FFT, ChromaConfig, StreamingChroma
from nodes.chords.recognize import LABELS, ChordConfig, OnlineViterbi, chord_scores, log_likelihoods


@dataclass(frozen=True)
class ChordChange:
    time: float  # s of input where the new chord starts (a frame centre)
    label: str  # Harte syntax: "C:maj", "A:min" or "N"
    confidence: float  # [0, 1] emission probability of the chord on its first frame


class ChordTracker:
    def __init__(self, rate: int, chroma: ChromaConfig | None = None, chords: ChordConfig | None = None) -> None:
        self.chords = chords or ChordConfig()
        self.chroma = StreamingChroma(rate, chroma)
        self.viterbi = OnlineViterbi(len(LABELS), self.chords.switch_prob, self.chords.lag)
        self._probs: list[np.ndarray] = []  # emission probabilities of the frames not decided yet
        self.current: int | None = None  # state of the last decided frame

    @property
    def delay_s(self) -> float:
        """How long after a frame's centre its chord is decided: the Viterbi lag plus half an analysis frame."""
        return (self.chords.lag + N_FFT / 2 / HOP) * HOP / ANALYSIS_RATE

    def push(self, samples: np.ndarray) -> list[ChordChange]:
        return self._decide(*self.chroma.push(samples), last=False)

    def flush(self) -> list[ChordChange]:
        return self._decide(*self.chroma.flush(), last=True)

    def _decide(self, treble: np.ndarray, bass: np.ndarray, last: bool) -> list[ChordChange]:
        if len(treble) == 0 and not last:  # most 20 ms blocks complete no 93 ms frame
            return []
        loglik = log_likelihoods(chord_scores(treble, bass, self.chords), self.chords.sharpness)
        self._probs.extend(np.exp(loglik))
        first = self.viterbi.decided
        states = self.viterbi.push(loglik) + (self.viterbi.flush() if last else [])
        changes = []
        for k, state in enumerate(states):
            probs = self._probs.pop(0)
            if state != self.current:
                changes.append(ChordChange(float(StreamingChroma.frame_time(first + k)), LABELS[state],
                                           round(float(probs[state]), 3)))
                self.current = state
        return changes

    def state_dict(self) -> dict[str, Any]:
        return {"chroma": self.chroma.state_dict(), "viterbi": self.viterbi.state_dict(),
                "probs": list(self._probs), "current": self.current}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.chroma.load_state_dict(state["chroma"])
        self.viterbi.load_state_dict(state["viterbi"])
        self._probs = [np.asarray(p) for p in state["probs"]]
        self.current = state["current"]
