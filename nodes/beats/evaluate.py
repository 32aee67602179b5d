"""Beat tracking scores (mir_eval, its default: beats before 5 s are not scored) and the plot of one file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class BeatScores:
    f_measure: float  # 70 ms window
    cmlt: float  # correct metrical level, total
    amlt: float  # any metrical level (double, half, off-beat), total
    p_score: float

    @classmethod
    def mean(cls, scores: list[BeatScores]) -> BeatScores:
        return cls(*(float(np.mean([getattr(s, f) for s in scores])) for f in cls.__dataclass_fields__))


def score(reference: np.ndarray, estimate: np.ndarray) -> BeatScores:
    import mir_eval

    ref, est = mir_eval.beat.trim_beats(np.asarray(reference, float)), mir_eval.beat.trim_beats(np.asarray(estimate, float))
    _, cmlt, _, amlt = mir_eval.beat.continuity(ref, est)
    return BeatScores(mir_eval.beat.f_measure(ref, est), cmlt, amlt, mir_eval.beat.p_score(ref, est))


def plot(path: Path, title: str, reference: np.ndarray, estimate: np.ndarray, activation: np.ndarray | None = None,
         fps: float = 0.0) -> None:
    """The decoder's input over time, our beats above it and the reference beats below it (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    end = max([*reference, *estimate, len(activation) / fps if activation is not None and fps else 0.0, 1.0])
    fig, ax = plt.subplots(figsize=(max(8.0, end / 4), 3))
    if activation is not None and len(activation):
        ax.plot(np.arange(len(activation)) / fps, activation, lw=0.6, color="0.5", label="activation")
    ax.vlines(estimate, 1.05, 1.45, color="tab:blue", lw=1, label="ours")
    ax.vlines(reference, -0.45, -0.05, color="tab:green", lw=1, label="reference")
    ax.set(xlim=(0, end), ylim=(-0.5, 1.5), xlabel="s", yticks=[], title=title)
    ax.legend(loc="upper right", fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
