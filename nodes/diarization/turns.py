"""Speaker turns from frame activities: start/stop events while streaming, RTTM turns at the end.

A speaker's turn starts on the first frame whose probability reaches ``onset`` and stops on the first frame
below ``offset`` (hysteresis, ``offset <= onset``, so a probability hovering at the threshold does not flicker).
Times are audio seconds from the start of the stream; the caller supplies the capture clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from stream.errors import ConfigError
from stream.rttm import Turn


@dataclass(frozen=True)
class TurnConfig:
    onset: float = 0.5  # [0, 1] probability that opens a turn
    offset: float = 0.5  # [0, onset] probability below which an open turn closes

    def __post_init__(self) -> None:
        if not 0 <= self.offset <= self.onset <= 1:
            raise ConfigError(f"TurnConfig: need 0 <= offset ({self.offset}) <= onset ({self.onset}) <= 1")


@dataclass(frozen=True)
class TurnEdge:
    """A turn opening (``start``) or closing (``stop``) at audio time ``t`` (s); confidence = mean probability."""

    kind: str  # "start" | "stop"
    speaker: int
    t: float
    confidence: float
    start: float  # s, when the turn started (== t for a "start" edge)


class TurnTracker:
    """Stateful block: ``__call__(probs[frames, speakers], t0) -> [TurnEdge]``; closed turns pile up in ``turns``.

    ``t0`` is the audio time (s) of the first frame; frames are ``resolution`` seconds long.
    """

    def __init__(self, config: TurnConfig, resolution: float) -> None:
        self.config = config
        self.resolution = resolution
        self.reset()

    def reset(self) -> None:
        self.open: dict[int, list[float]] = {}  # speaker -> [start s, sum of probabilities, frames]
        self.closed: list[tuple[float, float, int, float]] = []  # (start, end, speaker, confidence)

    def __call__(self, probs: np.ndarray, t0: float) -> list[TurnEdge]:
        edges: list[TurnEdge] = []
        for i, row in enumerate(probs):
            t = t0 + i * self.resolution
            for k, p in enumerate(row):
                if k in self.open:
                    if p < self.config.offset:
                        edges.append(self._close(k, t))
                    else:
                        self.open[k][1] += p
                        self.open[k][2] += 1
                elif p >= self.config.onset:
                    self.open[k] = [t, float(p), 1]
                    edges.append(TurnEdge("start", k, t, float(p), t))
        return edges

    def _close(self, speaker: int, t: float) -> TurnEdge:
        start, total, frames = self.open.pop(speaker)
        confidence = total / frames
        self.closed.append((start, t, speaker, confidence))
        return TurnEdge("stop", speaker, t, confidence, start)

    def close_all(self, t: float) -> list[TurnEdge]:
        """End of stream at audio time ``t``: close every open turn."""
        return [self._close(k, t) for k in sorted(self.open)]

    def turns(self, labels: list[str]) -> list[Turn]:
        """Closed turns with their speakers' labels, sorted by start time."""
        return sorted(Turn(s, e, labels[k]) for s, e, k, _ in self.closed)

    def active(self) -> dict[int, float]:
        """Speakers talking now -> mean probability of their open turn (for ``speaker.active`` snapshots)."""
        return {k: v[1] / v[2] for k, v in self.open.items()}

    def state_dict(self) -> dict[str, Any]:
        return {"open": {int(k): list(v) for k, v in self.open.items()}, "closed": [list(c) for c in self.closed]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.open = {int(k): [float(x) for x in v] for k, v in state["open"].items()}
        self.closed = [(float(s), float(e), int(k), float(c)) for s, e, k, c in state["closed"]]
