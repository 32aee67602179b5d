"""Powerset <-> multi-label conversion for 3 local speakers with at most 2 speaking at once.

segmentation-3.0 predicts one of 7 classes per frame; class k stands for the set of speakers in row k of
`MAPPING` (the order pyannote.audio trains with): {}, {0}, {1}, {2}, {0,1}, {0,2}, {1,2}.
"""

from __future__ import annotations

from itertools import combinations

import jax
import jax.numpy as jnp
import numpy as np

NUM_SPEAKERS = 3
MAX_SIMULTANEOUS = 2


def build_mapping(num_speakers: int = NUM_SPEAKERS, max_simultaneous: int = MAX_SIMULTANEOUS) -> np.ndarray:
    """[classes, speakers] 0/1 matrix: row k marks the speakers active in powerset class k."""
    rows = [
        [1.0 if s in subset else 0.0 for s in range(num_speakers)]
        for size in range(max_simultaneous + 1)
        for subset in combinations(range(num_speakers), size)
    ]
    return np.asarray(rows, np.float32)


MAPPING = build_mapping()  # [7, 3]


def to_multilabel(log_probs: jax.Array, soft: bool = False) -> jax.Array:
    """[..., 7] powerset log-probabilities -> [..., 3] speaker activities.

    Hard (default): the most likely class, as 0/1 per speaker. Soft: each speaker's marginal probability.
    """
    mapping = jnp.asarray(MAPPING)
    if soft:
        return jnp.exp(log_probs) @ mapping
    return jax.nn.one_hot(jnp.argmax(log_probs, axis=-1), mapping.shape[0], dtype=mapping.dtype) @ mapping


def to_powerset(activity: jax.Array) -> jax.Array:
    """[..., 3] 0/1 activities -> [...] powerset class index (sets of 3 speakers map to their closest class)."""
    mapping = jnp.asarray(MAPPING)
    # score = matches of active speakers minus misses, so the exact set (if it exists) wins
    score = activity @ mapping.T - (1 - activity) @ mapping.T
    return jnp.argmax(score, axis=-1)
