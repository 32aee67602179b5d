"""Cosine scoring and symmetric score normalisation (s-norm) against a cohort: pure NumPy functions.

Why s-norm: raw cosine scores shift with the model, the recording and the amount of enrolment audio, so a
threshold learnt on one set drifts on another. Normalising each score by how the enrolment side and the test side
score against a cohort of other speakers (impostors by construction) puts impostor scores near N(0, 1) on both
sides, which makes a threshold calibrated on utterance pairs carry over to centroid-vs-utterance scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nodes.speakers.plda import Plda
from stream.errors import ConfigError


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (embeddings are compared by angle only)."""
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All-pairs cosine similarity: a [N, D], b [M, D] -> [N, M] in [-1, 1]."""
    return l2_normalise(a) @ l2_normalise(b).T


def centroid(embeddings: np.ndarray) -> np.ndarray:
    """A speaker's enrolment embeddings [n, D] -> one unit vector [D] (mean of the unit vectors)."""
    return l2_normalise(l2_normalise(embeddings).mean(axis=0))


@dataclass(frozen=True)
class CohortStats:
    """Mean and standard deviation of each embedding's scores against the cohort (the impostor statistics)."""

    mean: np.ndarray  # [N]
    std: np.ndarray  # [N]


def cohort_stats(x: np.ndarray, cohort: np.ndarray) -> CohortStats:
    """Impostor statistics of each row of `x` [N, D] against `cohort` [C, D]."""
    if cohort.shape[0] < 2:
        raise ConfigError(f"s-norm needs a cohort of at least 2 embeddings, got {cohort.shape[0]}")
    scores = cosine(x, cohort)
    return CohortStats(scores.mean(axis=1), np.maximum(scores.std(axis=1), 1e-6))


def s_norm(raw: np.ndarray, enrol: CohortStats, test: CohortStats) -> np.ndarray:
    """Symmetric normalisation of raw scores [N_enrol, N_test]: mean of the z-norm (enrol side) and t-norm
    (test side) scores, so an impostor score is about N(0, 1) whichever side is unusual."""
    z = (raw - enrol.mean[:, None]) / enrol.std[:, None]
    t = (raw - test.mean[None, :]) / test.std[None, :]
    return 0.5 * (z + t)


def score(enrol: np.ndarray, test: np.ndarray, cohort: np.ndarray | None = None, plda: Plda | None = None
          ) -> np.ndarray:
    """Scores [N_enrol, N_test] of enrolment vectors against test embeddings: cosine, s-normed if a cohort is given,
    or PLDA log-likelihood ratios if a PLDA model is given (then no cohort: PLDA replaces s-norm)."""
    if plda is not None:
        if cohort is not None:
            raise ConfigError("PLDA scoring replaces s-norm: use a store without a cohort")
        return plda.score(enrol, test)
    raw = cosine(enrol, test)
    if cohort is None:
        return raw
    return s_norm(raw, cohort_stats(enrol, cohort), cohort_stats(test, cohort))
