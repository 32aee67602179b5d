"""Beat position in the bar from a downbeat activation at each beat: a bank of (meter, phase) hypotheses.

Each hypothesis "bars of m beats, downbeat when the beat count is k mod m" scores every beat by the log
likelihood of the downbeat activation under it (downbeat or not), with exponential forgetting so a bar change
(a pickup, a 3/4 section) is followed within a few bars. A beat is announced before its own activation is known,
so each step scores the previous beat and places the new one after it. Without an activation (the `dp` front
end) the position is unknown (0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stream.errors import ConfigError


@dataclass(frozen=True)
class BarConfig:
    meters: tuple[int, ...] = (3, 4)  # beats per bar considered
    memory: float = 0.9  # [0.5, 1) weight of the past per beat
    min_beats: int = 6  # beats before a position is reported

    def __post_init__(self) -> None:
        if not self.meters or min(self.meters) < 2:
            raise ConfigError(f"bar meters must be >= 2 beats, got {self.meters}")
        if not 0.5 <= self.memory < 1:
            raise ConfigError(f"bar memory must be in [0.5, 1), got {self.memory}")


class BarTracker:
    """Stateful step: `step(downbeat activation at the previous beat, or None) -> the new beat's place in the bar
    (1 = downbeat, 0 = unknown)`."""

    def __init__(self, config: BarConfig | None = None) -> None:
        self.config = config or BarConfig()
        self.hypotheses = [(m, k) for m in self.config.meters for k in range(m)]
        self.reset()

    def reset(self) -> None:
        self.scores = np.zeros(len(self.hypotheses))
        self.count = 0

    def step(self, previous: float | None) -> int:
        if previous is None:
            return 0
        if self.count:
            d = float(np.clip(previous, 1e-3, 1 - 1e-3))
            down = np.array([(self.count - 1 - k) % m == 0 for m, k in self.hypotheses])
            self.scores = self.config.memory * self.scores + np.where(down, np.log(d), np.log(1 - d))
        m, k = self.hypotheses[int(np.argmax(self.scores))]
        position = (self.count - k) % m + 1
        self.count += 1
        return position if self.count > self.config.min_beats else 0
