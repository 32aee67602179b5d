"""Overlap-add of rolling windows with a fixed latency: each output frame averages every window covering it
that exists when the frame is due.

Windows of ``duration`` seconds arrive every ``step`` seconds, already on a common frame grid of ``resolution``
seconds and already mapped to global speakers. When the window ending at ``t`` arrives, the block emits the
frames of ``[t - latency, t - latency + step)``: with ``latency == step`` that is the newest window's last step
(one window), with ``latency == duration`` each frame averages all ``duration / step`` windows that cover it.
Windows are weighted by a Hamming taper, so a frame counts most in windows that see context on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from stream.errors import ConfigError


TAIL_S = 1.0  # s, the end of each window that a local speaker's tail embedding pools alone (windows.py): 1 / 2 / 3 s
#   on the named-speaker conversations, AMI and simulated tune meetings at 0.5 s latency, 1 s the best on each


@dataclass(frozen=True)
class WindowGeometry:
    """Rolling-window contract shared by segmentation, aggregation and the file mode (seconds)."""

    duration: float = 8.0  # window length the segmentation model sees. AMI favours long windows (5 / 8 / 10 s:
    #   refined DER 33.7 / 29.6 / 30.4 %), fast turn-taking short ones (named-speaker test at 10 s: 80 % right):
    #   bench/RESULTS.md, "Diarisation"
    step: float = 0.5  # hop between windows = how often the output advances
    latency: float = 0.5  # delay from a frame's time to its output, step <= latency <= duration
    resolution: float = 0.02  # output frame length; step must be a whole number of frames

    def __post_init__(self) -> None:
        if not 0 < self.step <= self.duration:
            raise ConfigError(f"step={self.step} s must be in (0, duration={self.duration}]")
        if not self.step - 1e-9 <= self.latency <= self.duration + 1e-9:
            raise ConfigError(f"latency={self.latency} s must be between step={self.step} and duration={self.duration}")
        for name in ("duration", "step", "latency"):
            ratio = getattr(self, name) / self.step if name != "step" else self.step / self.resolution
            if abs(ratio - round(ratio)) > 1e-6:
                raise ConfigError(f"{name}={getattr(self, name)} s must be a whole number of steps/frames")

    @property
    def frames_per_step(self) -> int:
        return round(self.step / self.resolution)

    @property
    def frames_per_window(self) -> int:
        return round(self.duration / self.resolution)

    @property
    def steps_per_window(self) -> int:
        return round(self.duration / self.step)

    @property
    def tail_frames(self) -> int:
        return round(TAIL_S / self.resolution)

    @property
    def latency_steps(self) -> int:
        return round(self.latency / self.step)


def hamming(n: int) -> np.ndarray:
    """Symmetric Hamming taper of n frames, never exactly zero so every covered frame has a defined value."""
    return 0.54 - 0.46 * np.cos(2 * np.pi * (np.arange(n) + 0.5) / n)


class DelayedAggregation:
    """Stateful block: ``__call__(window[frames_per_window, speakers]) -> [frames_per_step, speakers]``.

    Keeps the tapered sums of the last ``latency`` seconds; the speaker axis grows as new speakers appear.
    """

    def __init__(self, geometry: WindowGeometry) -> None:
        self.geometry = geometry
        self.taper = hamming(geometry.frames_per_window)
        self.reset()

    def reset(self) -> None:
        g = self.geometry
        n = (g.latency_steps - 1) * g.frames_per_step  # frames not yet emitted: [t - latency + step, t)
        self.num = np.zeros((n, 0))
        self.den = np.zeros(n)

    def __call__(self, window: np.ndarray) -> np.ndarray:
        g = self.geometry
        if window.shape[0] != g.frames_per_window:
            raise ValueError(f"window has {window.shape[0]} frames, expected {g.frames_per_window}")
        speakers = max(window.shape[1], self.num.shape[1])
        num = np.pad(self.num, ((0, g.frames_per_step), (0, speakers - self.num.shape[1])))
        den = np.pad(self.den, (0, g.frames_per_step))
        tail = window[-num.shape[0]:]  # the window's part inside [t - latency, t)
        num[:, : window.shape[1]] += self.taper[-num.shape[0]:, None] * tail
        den += self.taper[-num.shape[0]:]
        out = num[: g.frames_per_step] / den[: g.frames_per_step, None]
        self.num, self.den = num[g.frames_per_step:], den[g.frames_per_step:]
        return out

    def flush(self) -> np.ndarray:
        """End of stream: the frames not yet emitted ([t - latency + step, t)), from the windows seen so far."""
        out = self.num / np.maximum(self.den, 1e-12)[:, None]
        self.reset()
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"num": self.num.copy(), "den": self.den.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.num = np.asarray(state["num"], np.float64).copy()
        self.den = np.asarray(state["den"], np.float64).copy()
