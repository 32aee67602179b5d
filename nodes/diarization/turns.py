"""Speaker turns from frame activities: start/stop events while streaming, RTTM turns at the end.

A speaker's turn starts on the first frame whose probability reaches ``onset`` and stops on the first frame
below ``offset`` (hysteresis, ``offset <= onset``, so a probability hovering at the threshold does not flicker).
Then, as pyannote's ``Binarize`` does offline: a pause shorter than ``min_duration_off`` does not end the turn
(gap filling), and a turn shorter than ``min_duration_on`` is never reported. Online this costs latency, never
accuracy of the times: a ``start`` edge is emitted once the turn has lasted ``min_duration_on`` (its time is still
the true start), a ``stop`` edge once the pause has lasted ``min_duration_off`` (its time is when speech stopped).
So a listener (the Home Assistant speaker sensor) never sees ``A -> none -> A`` within ``min_duration_off``.
Times are audio seconds from the start of the stream; the caller supplies the capture clock.

Closed turns wait in ``closed`` until taken: `stream diarize` reads them all at the end (``turns``), the live node
takes them as soon as their place in start order is final (``take``) and appends them to its RTTM, so a stream that
runs for weeks keeps (and checkpoints) a handful of turns, not all of them (issue 22).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from stream.errors import ConfigError
from stream.rttm import Turn


@dataclass(frozen=True)
class TurnConfig:
    """Minimum durations of 0.1 s: online turns of <= 0.1 s were 15 of 110 on an AMI meeting (issue #21); DER on
    the AMI clips before/after in bench/RESULTS.md, "Turn post-processing"."""

    onset: float = 0.5  # [0, 1] probability that opens a turn
    offset: float = 0.5  # [0, onset] probability below which an open turn closes
    min_duration_on: float = 0.1  # s >= 0: shorter turns are dropped; a start is announced this late
    min_duration_off: float = 0.1  # s >= 0: shorter pauses are filled; a stop is announced this late

    def __post_init__(self) -> None:
        if not 0 <= self.offset <= self.onset <= 1:
            raise ConfigError(f"TurnConfig: need 0 <= offset ({self.offset}) <= onset ({self.onset}) <= 1")
        if self.min_duration_on < 0 or self.min_duration_off < 0:
            raise ConfigError(f"TurnConfig: min_duration_on ({self.min_duration_on} s) and min_duration_off "
                              f"({self.min_duration_off} s) must be >= 0")


@dataclass(frozen=True)
class TurnEdge:
    """A turn opening (``start``) or closing (``stop``) at audio time ``t`` (s); confidence = mean probability."""

    kind: str  # "start" | "stop"
    speaker: int
    t: float
    confidence: float
    start: float  # s, when the turn started (== t for a "start" edge)


@dataclass
class OpenTurn:
    """A speaker's turn in progress: announced once it lasted `min_duration_on`; `pause` = when the speaker went
    quiet (the turn's end if the pause lasts `min_duration_off`), None while speaking."""

    start: float
    total: float  # sum of the speaking frames' probabilities
    frames: int
    announced: bool = False
    pause: float | None = None

    @property
    def confidence(self) -> float:
        return self.total / self.frames


class TurnTracker:
    """Stateful block: ``__call__(probs[frames, speakers], t0) -> [TurnEdge]``; closed turns pile up in ``closed``
    until taken (``take``).

    ``t0`` is the audio time (s) of the first frame; frames are ``resolution`` seconds long.
    """

    def __init__(self, config: TurnConfig, resolution: float) -> None:
        self.config = config
        self.resolution = resolution
        self.reset()

    def reset(self) -> None:
        self.open: dict[int, OpenTurn] = {}
        self.closed: list[tuple[float, float, int, float]] = []  # (start, end, speaker, confidence)

    def __call__(self, probs: np.ndarray, t0: float) -> list[TurnEdge]:
        c, edges = self.config, []
        for i, row in enumerate(probs):
            t = t0 + i * self.resolution
            for k, p in enumerate(row):
                turn = self.open.get(k)
                if turn is None:
                    if p >= c.onset:
                        self.open[k] = turn = OpenTurn(t, 0.0, 0)
                    else:
                        continue
                elif turn.pause is None and p < c.offset:
                    turn.pause = t
                elif turn.pause is not None and p >= c.onset:
                    turn.pause = None  # a short pause: the same turn goes on
                if turn.pause is None:
                    turn.total += float(p)
                    turn.frames += 1
                    if not turn.announced and t + self.resolution - turn.start >= c.min_duration_on - 1e-9:
                        turn.announced = True
                        edges.append(TurnEdge("start", k, turn.start, turn.confidence, turn.start))
                elif t + self.resolution - turn.pause >= c.min_duration_off - 1e-9:
                    edges += self._close(k, turn.pause)
        return edges

    def _close(self, speaker: int, t: float) -> list[TurnEdge]:
        turn = self.open.pop(speaker)
        if not turn.announced:
            return []  # shorter than min_duration_on: never happened
        self.closed.append((turn.start, t, speaker, turn.confidence))
        return [TurnEdge("stop", speaker, t, turn.confidence, turn.start)]

    def close_all(self, t: float) -> list[TurnEdge]:
        """End of stream at audio time ``t``: close every open turn (a long enough one is announced first)."""
        edges = []
        for k in sorted(self.open):
            turn = self.open[k]
            end = t if turn.pause is None else turn.pause
            if not turn.announced and end - turn.start >= self.config.min_duration_on - 1e-9:
                turn.announced = True
                edges.append(TurnEdge("start", k, turn.start, turn.confidence, turn.start))
            edges += self._close(k, end)
        return edges

    def turns(self, labels: list[str]) -> list[Turn]:
        """Closed turns not taken yet, with their speakers' labels, sorted by start time."""
        return sorted(Turn(s, e, labels[k]) for s, e, k, _ in self.closed)

    def take(self, labels: list[str]) -> list[Turn]:
        """Remove and return (sorted) the closed turns that start before every open one: no turn closed later can
        sort before them, so batches taken one after another concatenate to ``turns`` of an untaken tracker, in
        the same order. A turn still open holds back the turns that started after it (bounded by its length)."""
        first_open = min((v.start for v in self.open.values()), default=float("inf"))
        ready = [c for c in self.closed if c[0] < first_open]
        self.closed = [c for c in self.closed if c[0] >= first_open]
        return sorted(Turn(s, e, labels[k]) for s, e, k, _ in ready)

    def active(self) -> dict[int, float]:
        """Speakers talking now (announced turns) -> mean probability of their turn (``speaker.active`` snapshots)."""
        return {k: v.confidence for k, v in self.open.items() if v.announced}

    def state_dict(self) -> dict[str, Any]:
        return {"open": {int(k): [v.start, v.total, v.frames, v.announced, v.pause] for k, v in self.open.items()},
                "closed": [list(c) for c in self.closed]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.open = {int(k): OpenTurn(float(v[0]), float(v[1]), int(v[2]), bool(v[3]),
                                      None if v[4] is None else float(v[4])) for k, v in state["open"].items()}
        self.closed = [(float(s), float(e), int(k), float(c)) for s, e, k, c in state["closed"]]
