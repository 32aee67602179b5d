"""Isolated embeddings for the refinement: a local speaker of a window embedded by the whole CAM++ network on the
fbank frames where that speaker alone is active, and nothing else.

Why: the window embeddings of the online pass pool a CAM++ trunk that every voice of the window shares (0.8 s chunks,
the window's fbank mean), which keeps live embedding cheap but lets the other voices and the silences colour each
speaker's embedding: a voice's turns then look as different from each other as two voices do, and AHC merges voices
(bench/RESULTS.md, "Diarisation: isolated embeddings for the refinement"). With the whole recording seen, the
refinement can afford a cleaner view of some windows: every ``RefineConfig.isolate_every``-th window (at 8, 4 s
apart, so each moment of speech is embedded about twice), each local speaker with at least ``min_speech`` s of
speech of its own. They decide the clustering; the window embeddings still place every window (refine.py). Off by
default: on the tune meetings it helps short and mid-length ones and over-splits some of the long ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nodes.embedding.api import SAMPLE_RATE, embed_feature_list, waveform_fbank
from nodes.embedding.campplus import CampplusConfig

FBANK_PER_FRAME = 2  # 10 ms fbank frames per 20 ms grid frame (WindowGeometry.resolution)


def alone(activity: np.ndarray) -> np.ndarray:
    """[frames, local] bool: the local speaker is active (> 0.5) and no other one is."""
    active = activity > 0.5
    return active & (active.sum(axis=1, keepdims=True) == 1)


def isolated_embeddings(params: Any, windows: list[np.ndarray], activities: list[np.ndarray], resolution: float,
                        min_speech: float) -> list[np.ndarray]:
    """One [local, dim] array per window (16 kHz audio [samples] and grid activity [frames, local]): each local
    speaker's embedding of its frames alone, NaN where it has less than ``min_speech`` s of them."""
    assert round(resolution * 100) == FBANK_PER_FRAME, "isolated embeddings assume a 20 ms grid"
    crops, where = [], []
    for w, (audio, activity) in enumerate(zip(windows, activities)):
        fbank = waveform_fbank(audio, SAMPLE_RATE)
        own = alone(activity)
        for local in range(activity.shape[1]):
            grid = np.flatnonzero(own[:, local])
            if len(grid) * resolution < min_speech:
                continue
            rows = (FBANK_PER_FRAME * grid[:, None] + np.arange(FBANK_PER_FRAME)).ravel()
            crop = fbank[rows[rows < len(fbank)]]
            if np.ptp(crop, axis=0).max() < 1e-3:  # digital silence the segmentation took for speech
                continue
            crops.append(crop)
            where.append((w, local))
    out = [np.full((a.shape[1], CampplusConfig().embedding_size), np.nan, np.float32) for a in activities]
    if crops:
        for (w, local), emb in zip(where, embed_feature_list(params, crops, batch_size=8)):
            out[w][local] = emb
    return out
