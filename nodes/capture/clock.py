"""Capture time of device blocks, from when they arrive.

Why not PortAudio's `inputBufferAdcTime`: through ALSA's pulse plugin (the usual Linux path) it was measured
0 to 0.6 s older than the truth on these machines, varying from run to run. Arrival times are honest in one
direction: a block cannot arrive before its last sample was captured. So each arrival gives an upper bound on
the stream's start time (arrival - frames so far / rate); the smallest bound over a sliding window is the
estimate (the least-delayed callback wins), and the window lets it follow clock drift between the sound card
and the monotonic clock. Stamps are then sample-exact (start + offset / rate) and never earlier than the truth.
"""

from __future__ import annotations

from collections import deque

NS = 1_000_000_000


class ArrivalClock:
    """Stateful step: `stamp(frames, arrival_ns)` -> capture ns of the block's first sample."""

    def __init__(self, rate: int, window_s: float = 10.0) -> None:
        self.rate = rate
        self.window_ns = int(window_s * NS)
        self.reset()

    def reset(self) -> None:
        """Forget the history: call when samples were lost (an overflow), since the frame count no longer holds."""
        self._frames = 0
        self._bounds: deque[tuple[int, int]] = deque()  # (arrival ns, bound on start ns), bounds increasing

    def stamp(self, frames: int, arrival_ns: int) -> int:
        end = self._frames + frames
        bound = arrival_ns - end * NS // self.rate
        while self._bounds and self._bounds[-1][1] >= bound:  # a sliding-window minimum (monotonic deque)
            self._bounds.pop()
        self._bounds.append((arrival_ns, bound))
        while self._bounds[0][0] < arrival_ns - self.window_ns:
            self._bounds.popleft()
        start_ns = self._bounds[0][1] + self._frames * NS // self.rate
        self._frames = end
        return start_ns
