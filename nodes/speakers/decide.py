"""Verification (is this the claimed speaker?) and open-set identification (which enrolled speaker, if any?).

Both score test embeddings against enrolled centroids the way the store's threshold was calibrated: s-normed
against the store's cohort when it has one, PLDA log-likelihood ratios when it has a PLDA model, raw cosine
otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nodes.diarization.clustering import ClusteringConfig
from nodes.speakers.scoring import score
from nodes.speakers.store import SpeakerStore
from stream.errors import ConfigError

_CLUSTERING = ClusteringConfig()
UNKNOWN = "unknown"
DEFAULT_COSINE = _CLUSTERING.identify_threshold  # raw cosine: what the diarization node names enrolled speakers at


@dataclass(frozen=True)
class Decision:
    """The outcome for one test embedding: the best (or claimed) speaker, its score and the threshold used."""

    candidate: str  # the claimed speaker (verify) or the best-scoring one (identify)
    score: float
    threshold: float

    @property
    def accepted(self) -> bool:
        return self.score >= self.threshold

    @property
    def name(self) -> str:
        """The speaker decided on: the candidate if accepted, else UNKNOWN."""
        return self.candidate if self.accepted else UNKNOWN


def _threshold(store: SpeakerStore) -> float:
    """The store's calibrated threshold; on raw cosine (no cohort) `DEFAULT_COSINE` until one is calibrated."""
    if store.threshold is not None:
        return store.threshold.value
    if store.plda is not None:
        raise ConfigError(f"enrolment store {store.path} scores with PLDA but has no calibrated threshold: run "
                          f"`stream verify --calibrate TRIALS --backend plda --db {store.path}` (or pass --threshold)")
    if store.cohort is None:
        return DEFAULT_COSINE
    raise ConfigError(
        f"enrolment store {store.path} has a cohort (s-norm scores) but no calibrated threshold: run "
        f"`stream verify --calibrate TRIALS --db {store.path}` first (or pass --threshold)"
    )


def verify(store: SpeakerStore, name: str, tests: np.ndarray, threshold: float | None = None) -> list[Decision]:
    """Accept or reject each test embedding [N, D] as speaker `name`."""
    threshold = _threshold(store) if threshold is None else threshold
    scores = score(store.centroid(name)[None], tests, store.cohort, store.plda)[0]
    return [Decision(name, float(s), threshold) for s in scores]


def identify(store: SpeakerStore, tests: np.ndarray, threshold: float | None = None) -> list[Decision]:
    """The best-scoring enrolled speaker for each test embedding [N, D], or UNKNOWN below the threshold."""
    threshold = _threshold(store) if threshold is None else threshold
    centroids = store.centroids()
    if not centroids:
        raise ConfigError(f"enrolment store {store.path} has no speakers: enrol some with `stream enroll`")
    names = list(centroids)
    scores = score(np.stack(list(centroids.values())), tests, store.cohort, store.plda)  # [S, N]
    best = scores.argmax(axis=0)
    return [Decision(names[row], float(scores[row, column]), threshold) for column, row in enumerate(best)]
