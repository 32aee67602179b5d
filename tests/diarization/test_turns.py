"""Turn post-processing (issue #21, bug 5): no blips, no flapping, times kept.

On a 20 ms grid: a 60 ms blip, a 1 s turn, an 80 ms pause, 1 s more, then silence. With the default minimum
durations (0.1 s on and off) the blip is never reported and the pause does not split the turn; the stop edge
keeps the true end (2.34 s) although it is announced 0.1 s later.
"""

from __future__ import annotations

import numpy as np
import pytest

from nodes.diarization.turns import TurnConfig, TurnTracker
from stream.rttm import Turn

RES = 0.02


def frames(*spans: tuple[float, int]) -> np.ndarray:
    """[frames, 1] probabilities from (value, frames) runs."""
    return np.concatenate([np.full(n, v) for v, n in spans])[:, None]


def test_blip_dropped_short_pause_filled_times_kept():
    probs = frames((0.0, 5), (0.9, 3), (0.0, 5), (0.9, 50), (0.1, 4), (0.9, 50), (0.0, 20))
    tracker = TurnTracker(TurnConfig(), RES)
    edges = tracker(probs, t0=0.0)
    assert [(e.kind, round(e.t, 2)) for e in edges] == [("start", 0.26), ("stop", 2.34)]
    assert tracker.close_all(2.74) == []
    assert tracker.turns(["A"]) == [Turn(pytest.approx(0.26), pytest.approx(2.34), "A")]


def test_zero_minimum_durations_keep_every_edge():
    probs = frames((0.0, 5), (0.9, 3), (0.0, 5), (0.9, 50), (0.1, 4), (0.9, 50), (0.0, 20))
    tracker = TurnTracker(TurnConfig(min_duration_on=0.0, min_duration_off=0.0), RES)
    assert len(tracker(probs, t0=0.0)) == 6


def test_state_round_trip_mid_pause():
    probs = frames((0.9, 50), (0.1, 2))
    tracker = TurnTracker(TurnConfig(), RES)
    tracker(probs, t0=0.0)
    restored = TurnTracker(TurnConfig(), RES)
    restored.load_state_dict(tracker.state_dict())
    rest = frames((0.9, 10), (0.0, 10))
    assert [(e.kind, round(e.t, 2)) for e in restored(rest, 1.04)] == [("stop", 1.24)]
