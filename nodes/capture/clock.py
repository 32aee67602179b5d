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

import numpy as np

from nodes.capture.conform import Block

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

    @property
    def start_ns(self) -> int:
        """The current estimate of when the stream's first frame was captured (after at least one `stamp`)."""
        return self._bounds[0][1]


class LiveClock:
    """Stamps for audio that arrives over a network, where the sender may pause, reconnect, send a backlog at
    connection (what ffmpeg read while probing the stream, a camera's buffer) or send faster than real time (a
    file piped without `-re`).

    Each connection's first `settle_s` of arrivals is held: a backlog comes within it, all at once, so by the end
    of it the least-delayed arrival (`ArrivalClock`) tells when the connection's first sample was captured, and
    the backlog is stamped in the past where it belongs instead of at its late arrival. After that, blocks are
    stamped as they arrive. Within a connection the estimate is followed only forward: a block is never stamped
    before the end of the previous one, so audio that comes early is laid end to end (sample-exact; the source
    paces it) instead of compressing audio time. A new connection (`reconnect`) is stamped from its own arrivals,
    so the time the input was away is a gap in audio time.
    """

    def __init__(self, rate: int, settle_s: float = 0.5, max_held_s: float = 10.0) -> None:
        self.rate = rate
        self.settle_ns = int(settle_s * NS)
        self.max_held = int(max_held_s * rate)  # frames: a sender far ahead is not buffered whole
        self._arrivals = ArrivalClock(rate)
        self._anchor_ns: int | None = None  # stamp of the first frame counted in _frames
        self._frames = 0  # frames stamped since the anchor
        self._held: list[np.ndarray] = []  # this connection's first arrivals, not yet stamped
        self._offset = 0  # frames of this connection stamped so far
        self._release_ns: int | None = None  # when this connection's held arrivals are stamped

    @property
    def end_ns(self) -> int | None:
        """Capture ns just after the last stamped frame (None before the first block)."""
        if self._anchor_ns is None:
            return None
        return self._anchor_ns + self._frames * NS // self.rate

    def reconnect(self) -> list[Block]:
        """A new connection: what the old one left held comes out; its frame count says nothing about the new."""
        out = self.release()
        self._arrivals.reset()
        self._offset = 0
        self._release_ns = None
        return out

    def push(self, samples: np.ndarray, arrival_ns: int) -> list[Block]:
        """Samples [frames, channels] that arrived at `arrival_ns` -> the blocks now ready, stamped."""
        self._arrivals.stamp(len(samples), arrival_ns)
        self._held.append(samples)
        if self._release_ns is None:
            self._release_ns = arrival_ns + self.settle_ns
        if arrival_ns >= self._release_ns or sum(map(len, self._held)) >= self.max_held:
            return self.release()
        return []

    def hold_s(self, now_ns: int) -> float | None:
        """Seconds until what is held is due to be stamped (call `release` then); None when nothing is held."""
        if not self._held or self._release_ns is None:
            return None
        return max(0.0, (self._release_ns - now_ns) / NS)

    def release(self) -> list[Block]:
        """Stamp what is held from the connection's start estimate (never before the end of the previous block)."""
        out = []
        for samples in self._held:
            estimate = self._arrivals.start_ns + self._offset * NS // self.rate
            end = self.end_ns
            if end is None or estimate > end:  # first block, a gap (reconnection) or a sender clock running slow
                self._anchor_ns, self._frames, end = estimate, 0, estimate
            out.append(Block(samples, end))
            self._frames += len(samples)
            self._offset += len(samples)
        self._held = []
        return out
