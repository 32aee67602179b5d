"""Dropping the local speakers segmentation-3.0 is unsure anybody is speaking for (nodes.diarization.confidence)."""

from __future__ import annotations

import numpy as np

from nodes.diarization.confidence import MIN_SPEECH_CONFIDENCE, drop_unsure, speech_confidence
from nodes.segmentation.powerset import MAPPING


def powerset_log_probs(p_nobody: np.ndarray) -> np.ndarray:
    """[frames] P(nobody speaks) -> [frames, 7] log-probabilities, the rest spread over the speaking classes."""
    rest = (1 - p_nobody)[:, None] / (len(MAPPING) - 1)
    probs = np.concatenate([p_nobody[:, None], np.repeat(rest, len(MAPPING) - 1, axis=1)], axis=1)
    return np.log(probs)


def test_confidence_is_the_mean_speech_probability_over_active_frames():
    activity = np.zeros((2, 10, 3), np.float32)
    activity[0, :4, 0] = 1  # unsure: speech probability 0.7 on its frames
    activity[0, 4:, 1] = 1  # sure: 0.95
    activity[1, 2:5, 2] = 1  # 0.9, 0.9, 0.75 on its frames: mean 0.85, kept
    p_nobody = np.stack([np.r_[np.full(4, 0.3), np.full(6, 0.05)],
                         np.r_[np.full(4, 0.1), 0.25, np.full(5, 0.5)]])
    log_probs = np.stack([powerset_log_probs(p) for p in p_nobody])

    confidence = speech_confidence(activity, log_probs)
    np.testing.assert_allclose(confidence, [[0.7, 0.95, 1.0], [1.0, 1.0, 0.85]], atol=1e-6)

    kept = drop_unsure(activity, log_probs, MIN_SPEECH_CONFIDENCE)
    assert kept.dtype == activity.dtype and kept.shape == activity.shape
    assert kept[0, :, 0].sum() == 0  # dropped
    np.testing.assert_array_equal(kept[0, :, 1:], activity[0, :, 1:])
    np.testing.assert_array_equal(kept[1], activity[1])
    assert drop_unsure(activity, log_probs, 0.0).sum() == activity.sum()  # threshold 0 keeps everybody
