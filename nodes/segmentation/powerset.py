"""Powerset <-> multi-label conversion for 3 local speakers with at most 2 speaking at once.

segmentation-3.0 predicts one of 7 classes per frame; class k stands for the set of speakers in row k of
`MAPPING` (the order pyannote.audio trains with): {}, {0}, {1}, {2}, {0,1}, {0,2}, {1,2}.
"""

from __future__ import annotations

from itertools import combinations, permutations

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


PERMUTATIONS = np.array(list(permutations(range(NUM_SPEAKERS))), np.int32)  # [6, 3]


def permutation_invariant_loss(log_probs: jax.Array, targets: jax.Array) -> jax.Array:
    """Powerset cross-entropy under the best speaker order, averaged over chunks: the fine-tuning loss.

    `log_probs` [B, frames, 7], `targets` [B, frames, 3] 0/1 reference activity in any speaker order. For each
    chunk, every one of the 3! orders of the reference columns is mapped to powerset classes and scored by the
    mean cross-entropy over frames; the smallest counts (exact PIT: pyannote.audio instead picks the order that best
    matches its thresholded prediction, then takes the cross-entropy of that one).
    """
    classes = to_powerset(targets[..., jnp.asarray(PERMUTATIONS)])  # [B, frames, 6]
    nll = -jnp.take_along_axis(log_probs[:, :, None, :], classes[..., None], axis=-1)[..., 0]
    return nll.mean(axis=1).min(axis=1).mean()
