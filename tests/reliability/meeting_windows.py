"""Synthetic "window" messages of a long two-speaker conversation, to drive the diarization node for hours of
stream time in seconds (no models): speakers take turns of 3-8 s with pauses of 0.3-1.5 s (about 600 turns an
hour, as the measurement in bench/RESULTS.md "Per-stream state and memory"), local speaker i is speaker i in
every window, each active one embedded every window as its voice plus a little noise. Deterministic for a seed.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from nodes.diarization.aggregation import WindowGeometry
from nodes.diarization.stitching import Plan
from nodes.embedding.campplus import CampplusConfig
from nodes.segmentation.node import window_message
from stream.message import Message

NS = 1_000_000_000
T0_WALL = 1_765_000_000.0  # Unix s of the stream's start (the RTTM file name)


def speaker_frames(seconds: float, geometry: WindowGeometry, seed: int) -> np.ndarray:
    """Who talks in each output frame (0 or 1; -1 = nobody)."""
    rng = np.random.default_rng(seed)
    frames = np.full(round(seconds / geometry.resolution), -1, np.int8)
    t, who = 1.0, 0
    while t < seconds:
        turn = rng.uniform(3.0, 8.0)
        frames[round(t / geometry.resolution):round((t + turn) / geometry.resolution)] = who
        t, who = t + turn + rng.uniform(0.3, 1.5), 1 - who
    return frames


def windows(stream: str, seconds: float, geometry: WindowGeometry, seed: int = 0,
            first: int = 0) -> Iterator[Message]:
    """Window messages ``first``, ``first + 1``, ... of a ``seconds`` long conversation."""
    rng = np.random.default_rng(seed + 1)
    voices = rng.standard_normal((2, CampplusConfig().embedding_size))
    who = speaker_frames(seconds, geometry, seed)
    padded = np.concatenate([np.full(geometry.frames_per_window - geometry.frames_per_step, -1, np.int8), who])
    for k in range(first, int(seconds / geometry.step)):
        frames = padded[k * geometry.frames_per_step:k * geometry.frames_per_step + geometry.frames_per_window]
        activity = np.zeros((geometry.frames_per_window, 3), np.float32)
        embeddings = np.full((3, 2, voices.shape[1]), np.nan, np.float32)  # [local, whole / tail, dim]
        for s in (0, 1):
            activity[frames == s, s] = 0.9
            if (frames == s).any():
                embeddings[s] = voices[s] + 0.1 * rng.standard_normal(voices.shape[1])
        t_end = (k + 1) * geometry.step
        yield window_message(stream, k, activity, embeddings, Plan(True, {}),
                             (NS + round(t_end * NS), T0_WALL + t_end), t_end, geometry)
