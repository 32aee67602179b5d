"""Audio lost upstream, or heard twice, keeps the segmentation node's windows and the VAD node's event times on the
stream's time.

Guards (per-stream state alone, no model): 10 s of 20 ms blocks lost are filled with silence (windows go on, on
time: window k ends at (k + 1) * 0.5 s); after 40 s lost (over `MAX_FILL_S`) the stream starts afresh and the next
window is the one ending at the first whole step after the gap, at the block's own time; blocks heard again (a source resumed from its checkpoint) add nothing; a 10 ms stamp jitter is left alone.
"""

from __future__ import annotations

import numpy as np

from nodes.diarization.pipeline import SAMPLE_RATE
from nodes.segmentation.node import SegmentationConfig, StreamWindows

BLOCK = 320  # 20 ms at 16 kHz
NS = 1_000_000_000


def feed(s: StreamWindows, first: int, count: int, jitter_ns: int = 0) -> list[int]:
    """Push blocks `first`..`first + count - 1` stamped at their time; the window indices cut."""
    cut = []
    for b in range(first, first + count):
        block = s.on_time(np.full(BLOCK, 0.1, np.float32), s.t0[0] + b * BLOCK * NS // SAMPLE_RATE + jitter_ns)
        for _ in s.buffer.push(block):
            cut.append(s.windows)
            s.windows += 1
    return cut


def test_short_gap_is_filled_with_silence():
    s = StreamWindows(SegmentationConfig(), (10 * NS, 0.0))
    assert feed(s, 0, 500) == list(range(20))
    assert feed(s, 1000, 25) == list(range(20, 41))  # 10 s lost, filled: windows ending at 10.5 .. 20.5 s
    assert s.buffer.samples == 1025 * BLOCK


def test_windows_stay_on_the_stream_time_across_a_gap_and_a_replay():
    s = StreamWindows(SegmentationConfig(), (10 * NS, 0.0))
    assert feed(s, 0, 500, jitter_ns=10_000_000) == list(range(20))  # 10 s: windows 0..19 end at 0.5..10 s
    assert feed(s, 2500, 100) == list(range(100, 104))  # 40 s lost: windows end at 50.5 .. 52.0 s
    assert s.buffer.samples == 2600 * BLOCK
    assert feed(s, 2540, 55) == []  # blocks 2540..2594 heard again (> 0.1 s behind) add nothing
    assert s.buffer.samples == 2600 * BLOCK


def test_vad_times_stay_true_across_a_gap_and_a_replay():
    from nodes.vad.node import StreamVad

    class Clock:  # the detector's stream clock and what it was told, without the model
        def __init__(self) -> None:
            self.skipped: list[float] = []

        def skip(self, seconds: float) -> list:
            self.skipped.append(seconds)
            return []

    s = StreamVad(Clock(), 10 * NS, 0.0)
    pushed = [len(s.on_time(np.zeros(BLOCK, np.float32), s.t0_ns + b * BLOCK * NS // SAMPLE_RATE + 5_000_000)[0])
              for b in range(100)]
    assert pushed == [BLOCK] * 100 and s.detector.skipped == []  # 5 ms jitter: left alone
    s.on_time(np.zeros(BLOCK, np.float32), s.t0_ns + 200 * BLOCK * NS // SAMPLE_RATE)
    assert s.detector.skipped == [100 * BLOCK / SAMPLE_RATE] and s.samples == 201 * BLOCK  # 2 s lost: skipped
    assert len(s.on_time(np.zeros(BLOCK, np.float32), s.t0_ns + 150 * BLOCK * NS // SAMPLE_RATE)[0]) == 0
