"""Cosine scoring and s-norm on synthetic embeddings with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from nodes.speakers.calibration import threshold_at_eer
from nodes.speakers.scoring import CohortStats, centroid, cohort_stats, cosine, s_norm, score
from stream.errors import ConfigError


def test_cosine_and_centroid_known_values():
    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    b = np.array([[3.0, 3.0]])
    np.testing.assert_allclose(cosine(a, b), [[np.sqrt(0.5)], [np.sqrt(0.5)]], atol=1e-12)
    np.testing.assert_allclose(centroid(a), [np.sqrt(0.5), np.sqrt(0.5)], atol=1e-12)


def test_s_norm_formula():
    """0.5 * ((0.5 - 0.1) / 0.2 + (0.5 - 0.3) / 0.1) = 0.5 * (2 + 2) = 2."""
    enrol, test = CohortStats(np.array([0.1]), np.array([0.2])), CohortStats(np.array([0.3]), np.array([0.1]))
    out = s_norm(np.array([[0.5]]), enrol, test)
    assert out[0, 0] == pytest.approx(2.0)


def test_s_norm_makes_impostor_scores_standard_normal():
    """Random 64-d speakers: s-normed impostor scores have mean ~0 and std ~1 (raw cosine: std ~1/sqrt(64))."""
    rng = np.random.default_rng(0)
    cohort, enrol, test = (rng.normal(size=(n, 64)) for n in (300, 50, 50))
    scores = score(enrol, test, cohort)
    assert abs(scores.mean()) < 0.1
    assert 0.9 < scores.std() < 1.1


def test_s_norm_removes_per_utterance_bias():
    """Each test utterance carries its own offset direction (channel) of random strength: raw cosine mixes the
    offset strength into every score; s-norm cancels it, so the EER falls (20 speakers x 10 utterances)."""
    rng = np.random.default_rng(1)
    dim, speakers, per = 32, 20, 10
    channel = rng.normal(size=dim)
    voices = rng.normal(size=(speakers, dim))

    def utterances(voice_ids: np.ndarray) -> np.ndarray:
        strength = rng.uniform(0.0, 3.0, size=(len(voice_ids), 1))
        return voices[voice_ids] + 1.2 * rng.normal(size=(len(voice_ids), dim)) + strength * channel

    ids = np.repeat(np.arange(speakers), per)
    emb = utterances(ids)
    cohort = rng.normal(size=(200, dim)) + rng.uniform(0.0, 3.0, size=(200, 1)) * channel
    same = ids[:, None] == ids[None, :]
    upper = np.triu(np.ones_like(same), k=1).astype(bool)

    def eer(scores: np.ndarray) -> float:
        return threshold_at_eer(scores[same & upper], scores[~same & upper])[1]

    raw, normed = eer(score(emb, emb)), eer(score(emb, emb, cohort))
    assert raw > 0.10
    assert normed < 0.6 * raw


def test_cohort_too_small():
    with pytest.raises(ConfigError, match="at least 2"):
        cohort_stats(np.ones((1, 4)), np.ones((1, 4)))
