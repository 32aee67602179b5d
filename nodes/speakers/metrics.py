"""Speaker-verification figures of merit: EER, NIST minDCF and the DET curve (probit axes), from trial scores."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nodes.speakers.calibration import threshold_at_eer


@dataclass(frozen=True)
class VerificationScores:
    """EER (%), its threshold, and normalised minDCF at `p_target` (C_miss = C_fa = 1)."""

    targets: int
    impostors: int
    eer: float  # percent
    threshold: float
    min_dcf: float
    p_target: float


def det_curve(target: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, false-rejection rates, false-acceptance rates), accept if score >= threshold."""
    target, impostor = np.sort(target), np.sort(impostor)
    thresholds = np.unique(np.concatenate([target, impostor, [np.inf]]))
    frr = np.searchsorted(target, thresholds, side="left") / target.size
    far = 1.0 - np.searchsorted(impostor, thresholds, side="left") / impostor.size
    return thresholds, frr, far


def min_dcf(target: np.ndarray, impostor: np.ndarray, p_target: float = 0.01) -> float:
    """Minimum over thresholds of (P_miss p + P_fa (1 - p)) / min(p, 1 - p): NIST SRE's normalised minDCF."""
    _, frr, far = det_curve(target, impostor)
    return float(np.min(frr * p_target + far * (1 - p_target)) / min(p_target, 1 - p_target))


def verification_scores(target: np.ndarray, impostor: np.ndarray, p_target: float = 0.01) -> VerificationScores:
    """EER and minDCF of target and impostor scores (higher score = more likely the same speaker)."""
    threshold, eer = threshold_at_eer(target, impostor)
    return VerificationScores(len(target), len(impostor), 100 * eer, threshold, min_dcf(target, impostor, p_target),
                              p_target)


def plot_det(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> None:
    """DET curves {label: (frr, far)} on normal-deviate (probit) axes, as NIST draws them, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    ticks = np.array([0.0001, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4])
    lo = 1e-4
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    for label, (frr, far) in curves.items():
        ax.plot(norm.ppf(np.clip(far, lo, 1 - lo)), norm.ppf(np.clip(frr, lo, 1 - lo)), label=label)
    ax.plot(norm.ppf([lo, 0.5]), norm.ppf([lo, 0.5]), color="grey", lw=0.5, ls=":")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_ticks(norm.ppf(ticks))
        axis.set_ticklabels([f"{100 * t:g}" for t in ticks])
    ax.set_xlim(norm.ppf(lo), norm.ppf(0.5))
    ax.set_ylim(norm.ppf(lo), norm.ppf(0.5))
    ax.set_xlabel("false acceptance rate (%)")
    ax.set_ylabel("false rejection rate (%)")
    ax.set_title("DET curve")
    ax.grid(True, lw=0.3)
    ax.legend(loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
