"""Overlap-aware local speaker segmentation: pyannote segmentation-3.0 (PyanNet) in JAX.

    params = stream.models.load_params("segmentation-3.0")
    activity, log_probs = segment(params, windows)           # [B, frames, 3], [B, frames, 7]
    seg = RollingSegmenter(params, RollingConfig(window=5.0, step=0.5)); seg.push(samples)
"""

from nodes.segmentation.model import FRAME_DURATION, FRAME_STEP, MIN_SAMPLES, num_frames, receptive_field_samples
from nodes.segmentation.powerset import MAPPING, to_multilabel, to_powerset
from nodes.segmentation.segment import (
    RollingConfig,
    RollingSegmenter,
    WindowActivity,
    rolling_windows,
    segment,
    segment_file,
)

__all__ = [
    "FRAME_DURATION",
    "FRAME_STEP",
    "MAPPING",
    "MIN_SAMPLES",
    "RollingConfig",
    "RollingSegmenter",
    "WindowActivity",
    "num_frames",
    "receptive_field_samples",
    "rolling_windows",
    "segment",
    "segment_file",
    "to_multilabel",
    "to_powerset",
]
