"""A stream's audio time kept true when audio goes missing upstream, for nodes whose trackers count samples.

A tracker (chords) times what it finds by the samples it was fed. When audio is lost before it
(a drop, a restarted upstream node, this node restarted from a checkpoint while capture went on), counting
samples puts every later event early by the lost span; audio sent twice (a source resumed from its checkpoint)
puts them late. `AudioClock` compares each block's capture stamp with the samples fed so far: a gap is noted and
later tracker times are shifted by it (`to_stream`); audio heard twice is cut before the tracker sees it. A tracker
that decides on a frame grid (chords: 92.9 ms hops) gives its `grid_s`: a gap is then widened to the next whole
number of frames by cutting the first samples after it, so its frames, and the times of what it finds, stay on
the grid of a tracker that lost nothing (else every later event moves by a fraction of a frame).
Offsets under `REALIGN_S` (a device clock's jitter) are left alone. (Trackers that can jump do so instead, with
the same threshold: the VAD detector skips a gap closing open speech at its start, the sound-event detector goes
on at the next patch of its grid, the beat tracker at the next onset frame of its grid, its posterior carried
across.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

REALIGN_S = 0.1  # s: audio further off its capture time than this is put back on the stream's time
MAX_GAPS = 32  # gaps remembered: far more than a tracker's decision delay ever spans


@dataclass
class AudioClock:
    t0_ns: int  # capture time of the stream's audio time 0 (monotonic ns)
    rate: int  # Hz of the samples fed
    fed: int = 0  # samples fed to the tracker
    gaps: list[tuple[float, float]] = field(default_factory=list)  # (tracker s where a gap was, s skipped in all)
    grid_s: float = 0.0  # the tracker's frame period: skips are whole frames (0: any length)

    @property
    def skipped_s(self) -> float:
        return self.gaps[-1][1] if self.gaps else 0.0

    def place(self, samples: np.ndarray, t_capture_ns: int) -> np.ndarray:
        """The samples of a block stamped `t_capture_ns` to feed the tracker (audio heard twice cut)."""
        at = (t_capture_ns - self.t0_ns) / 1e9  # the block's stream time
        off = at - (self.fed / self.rate + self.skipped_s)
        if off > REALIGN_S:
            skipped = self.skipped_s + off
            if self.grid_s > 0:  # on to the next frame edge of the stream's grid: the samples before it are cut
                cut = round((np.ceil(skipped / self.grid_s - 1e-6) * self.grid_s - skipped) * self.rate)
                samples = samples[min(cut, len(samples)):]
                skipped += cut / self.rate
            self.gaps = [*self.gaps, (self.fed / self.rate, skipped)][-MAX_GAPS:]
        elif off < -REALIGN_S:
            samples = samples[min(round(-off * self.rate), len(samples)):]
        self.fed += len(samples)
        return samples

    def rewind(self, fed: int) -> None:
        """The tracker restarted from sample `fed` (what it had buffered beyond is lost): the next block's stamp
        then shows that, and any outage, as a gap."""
        self.fed = fed
        self.gaps = [g for g in self.gaps if g[0] <= fed / self.rate]

    def to_stream(self, t: float) -> float:
        """Stream time (s since audio time 0) of tracker time `t`."""
        shift = 0.0
        for at, skipped in self.gaps:
            if t >= at - 1e-9:
                shift = skipped
        return t + shift

    def state_dict(self) -> dict[str, Any]:
        return {"t0_ns": self.t0_ns, "rate": self.rate, "fed": self.fed, "gaps": [list(g) for g in self.gaps]}

    @classmethod
    def from_state(cls, state: dict[str, Any], grid_s: float = 0.0) -> AudioClock:
        return cls(int(state["t0_ns"]), int(state["rate"]), int(state["fed"]),
                   [(float(a), float(b)) for a, b in state["gaps"]], grid_s)
