"""Audio lost upstream, or heard twice, keeps the VAD node's event times on the stream's time (the segmentation
node does the same: tests/meeting/test_meeting.py).

Guards (per-stream state alone, the detector's clock faked): a 5 ms stamp jitter is left alone; 2 s of 20 ms
blocks lost make the detector skip exactly 2 s (closing open speech at the gap's start); blocks heard again (a
source resumed from its checkpoint) push nothing.
"""

from __future__ import annotations

import numpy as np

from nodes.vad.detector import SAMPLE_RATE
from nodes.vad.node import StreamVad

BLOCK = 320  # 20 ms at 16 kHz
NS = 1_000_000_000


class Clock:
    """Stands in for the detector: records the skips it is told."""

    def __init__(self) -> None:
        self.skipped: list[float] = []

    def skip(self, seconds: float) -> list:
        self.skipped.append(seconds)
        return []


def stamp(s: StreamVad, block: int, jitter_ns: int = 0) -> int:
    return s.t0_ns + block * BLOCK * NS // SAMPLE_RATE + jitter_ns


def test_vad_times_stay_true_across_a_gap_and_a_replay():
    s = StreamVad(Clock(), 10 * NS, 0.0)
    pushed = [len(s.on_time(np.zeros(BLOCK, np.float32), stamp(s, b, 5_000_000))[0]) for b in range(100)]
    assert pushed == [BLOCK] * 100 and s.detector.skipped == []
    s.on_time(np.zeros(BLOCK, np.float32), stamp(s, 200))
    assert s.detector.skipped == [100 * BLOCK / SAMPLE_RATE] and s.samples == 201 * BLOCK
    assert len(s.on_time(np.zeros(BLOCK, np.float32), stamp(s, 150))[0]) == 0
    assert s.samples == 201 * BLOCK
