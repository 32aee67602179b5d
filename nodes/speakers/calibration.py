"""Decision thresholds from trial scores: at a target false-acceptance rate, or at the equal-error point.

Pure functions over score arrays; reading trial lists and embedding their audio is the commands' job.
A decision is `accept if score >= threshold`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stream.errors import ConfigError


@dataclass(frozen=True)
class Threshold:
    """A calibrated decision threshold and where it came from (saved in the enrolment store)."""

    value: float
    method: str  # "far" (a target false-acceptance rate) or "eer" (the equal-error point)
    far: float  # false-acceptance rate on the calibration trials at `value`, in [0, 1]
    frr: float | None  # false-rejection rate there (None when the trials had no target pairs)
    snorm: bool  # whether the scores were s-normed (a threshold only fits scores made the same way)
    trials: str  # the calibration trial list, for the record
    backend: str = "cosine"  # "cosine" (raw or s-normed) or "plda" (log-likelihood ratios of the store's PLDA)


@dataclass(frozen=True)
class Trial:
    """One line of a trial list: is `test` spoken by the speaker of `enrol`?"""

    target: bool
    enrol: Path
    test: Path


def read_trials(path: Path) -> list[Trial]:
    """Read a VoxCeleb-style trial list: `LABEL ENROL TEST` per line, LABEL 1/0 (or target/nontarget).

    Relative audio paths are taken from the trial file's folder, so a list travels with its audio.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"trial list {path} does not exist")
    labels = {"1": True, "target": True, "0": False, "nontarget": False}
    trials = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) != 3 or fields[0].lower() not in labels:
            raise ConfigError(
                f"{path}:{number}: expected 'LABEL ENROL TEST' with LABEL 1/0 or target/nontarget, got {line!r}"
            )
        enrol, test = (p if p.is_absolute() else path.parent / p for p in map(Path, fields[1:]))
        trials.append(Trial(labels[fields[0].lower()], enrol, test))
    if not trials:
        raise ConfigError(f"trial list {path} has no trials")
    return trials


def error_rates(target: np.ndarray, impostor: np.ndarray, threshold: float) -> tuple[float, float]:
    """(false-acceptance rate, false-rejection rate) at `threshold`; FRR is NaN without target scores."""
    far = float(np.mean(np.asarray(impostor) >= threshold))
    frr = float(np.mean(np.asarray(target) < threshold)) if len(target) else float("nan")
    return far, frr


def threshold_at_far(impostor: np.ndarray, far: float) -> float:
    """The lowest threshold whose false-acceptance rate on `impostor` scores is at most `far`.

    It sits halfway between the highest impostor score that must be rejected and the next one up, so small
    shifts of the score distribution do not flip the decision on calibration-like scores.
    """
    if not 0.0 <= far < 1.0:
        raise ConfigError(f"target false-acceptance rate must be in [0, 1), got {far}")
    scores = np.sort(np.asarray(impostor, dtype=np.float64))[::-1]
    if scores.size == 0:
        raise ConfigError("calibration needs impostor (non-target) trials; the trial list has none")
    accepted = int(np.floor(far * scores.size + 1e-9))  # impostors we may let through
    if accepted == 0:
        return float(np.nextafter(scores[0], np.inf))
    if accepted >= scores.size:
        return float(scores[-1])
    return float(0.5 * (scores[accepted - 1] + scores[accepted]))


def threshold_at_eer(target: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """(threshold, EER): the score where false acceptances and false rejections are (nearly) equally frequent."""
    target = np.sort(np.asarray(target, dtype=np.float64))
    impostor = np.sort(np.asarray(impostor, dtype=np.float64))
    if target.size == 0 or impostor.size == 0:
        raise ConfigError("the equal-error point needs both target and non-target trials")
    candidates = np.unique(np.concatenate([target, impostor]))
    frr = np.searchsorted(target, candidates, side="left") / target.size
    far = 1.0 - np.searchsorted(impostor, candidates, side="left") / impostor.size
    best = int(np.argmin(np.abs(far - frr)))
    return float(candidates[best]), float(0.5 * (far[best] + frr[best]))


def calibrate(
    scores: np.ndarray, targets: np.ndarray, far: float | None, snorm: bool, trials: str, backend: str = "cosine"
) -> Threshold:
    """The threshold for trial `scores` [N] with labels `targets` [N] (bool): at false-acceptance rate `far`,
    or at the equal-error point when `far` is None."""
    scores, targets = np.asarray(scores, dtype=np.float64), np.asarray(targets, dtype=bool)
    target, impostor = scores[targets], scores[~targets]
    if far is None:
        value, _ = threshold_at_eer(target, impostor)
    else:
        value = threshold_at_far(impostor, far)
    got_far, frr = error_rates(target, impostor, value)
    return Threshold(value, "far" if far is not None else "eer", got_far, frr if len(target) else None, snorm, trials,
                     backend)
