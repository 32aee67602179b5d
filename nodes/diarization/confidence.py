"""Which local speakers of a window to trust: drop those the segmentation model is unsure anybody is speaking for.

segmentation-3.0's powerset output gives, per frame, the probability that nobody speaks (class 0). On real speech
it is near 0; where the model hears speech in noise, laughter or breathing it is not. On the 12 AMI clips (5 s
windows), the local speakers active in a window's last 0.5 s that overlap no reference speech anywhere in the
window average a speech probability of 0.71 over their active frames (none above 0.89); the others 0.93. A local
speaker whose active frames average less than ``MIN_SPEECH_CONFIDENCE`` is therefore dropped from the window
before anything else sees it (planner, embeddings, clustering, aggregation, refinement). With the default 8 s
windows (bench/RESULTS.md, "Diarisation"), online DER at latency 0.5 s / 5 s and refined: 35.3 / 30.9 / 29.6 %
without the filter, 34.9 / 30.0 / 29.0 at 0.7, 32.9 / 29.2 / 29.0 at 0.75, 35.2 / 30.4 / 29.2 at 0.8. Longer
windows hear fewer phantoms (10 s: the filter gains 0.2-0.5 point at 0.7 and loses 0.4-1.0 at 0.8); 5 s windows
hear the most (0.8 there: 37.9 -> 34.5 online at 0.5 s).
"""

from __future__ import annotations

import numpy as np

from nodes.segmentation.powerset import MAPPING

MIN_SPEECH_CONFIDENCE = 0.75  # [0, 1] mean P(somebody speaks) over a local speaker's active frames to keep it
_NOBODY = int(np.flatnonzero(MAPPING.sum(axis=1) == 0)[0])  # the powerset class of silence


def speech_confidence(activity: np.ndarray, log_probs: np.ndarray) -> np.ndarray:
    """[..., frames, local] 0/1 activity and [..., frames, classes] powerset log-probabilities (same frames)
    -> [..., local] mean probability that somebody speaks over each local speaker's active frames (1 if never
    active: nothing to drop)."""
    speech = 1.0 - np.exp(log_probs[..., _NOBODY])  # [..., frames]
    on = activity > 0.5
    frames = on.sum(axis=-2)
    total = (on * speech[..., None]).sum(axis=-2)
    return np.where(frames > 0, total / np.maximum(frames, 1), 1.0)


def drop_unsure(activity: np.ndarray, log_probs: np.ndarray,
                min_confidence: float = MIN_SPEECH_CONFIDENCE) -> np.ndarray:
    """``activity`` with the local speakers below ``min_confidence`` silenced (a copy, same shape and dtype)."""
    keep = speech_confidence(activity, log_probs) >= min_confidence  # [..., local]
    return activity * keep[..., None, :].astype(activity.dtype)
