"""Which local speakers of a window to trust: drop those the segmentation model is unsure anybody is speaking for.

segmentation-3.0's powerset output gives, per frame, the probability that nobody speaks (class 0). On real speech
it is near 0; where the model hears speech in noise, laughter or breathing it is not. On the 12 AMI clips (5 s
windows), the local speakers active in a window's last 0.5 s that overlap no reference speech anywhere in the
window average a speech probability of 0.71 over their active frames (none above 0.89); the others 0.93. A local
speaker whose active frames average less than ``MIN_SPEECH_CONFIDENCE`` is therefore dropped from the window
before anything else sees it (planner, embeddings, clustering, aggregation, refinement). Online DER at 0.5 s
latency 37.9 -> 34.5 % (false alarm 7.0 -> 3.6, confusion 10.5 -> 8.1, missed 20.4 -> 22.8), refined 32.3 -> 30.8
(bench/RESULTS.md, "Diarisation"); 0.7 / 0.75 / 0.85 give 36.4 / 35.1 / 36.3 online. This pays with 5 s windows
only: on 10 s windows (the length the model was trained on) it hears far fewer phantoms (false alarm 3.5 % at 0.5 s
latency without the filter) and the filter gains 0.2-0.5 point at 0.7 and loses 0.4-1.0 at 0.8.
"""

from __future__ import annotations

import numpy as np

from nodes.segmentation.powerset import MAPPING

MIN_SPEECH_CONFIDENCE = 0.8  # [0, 1] mean P(somebody speaks) over a local speaker's active frames to keep it
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
