"""Baum-Welch statistics of an utterance against the UBM: what the i-vector model sees of it.

    N_c = sum_t gamma_tc                          zeroth order [C]
    F_c = sum_t gamma_tc (x_t - mu_c) / sigma_c   first order [C, D], centred on the UBM means and whitened

Whitening by the UBM's standard deviations lets the total-variability model use an identity residual covariance.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from nodes.speakers.ivector.ubm import DiagGmm, posteriors

MIN_BUCKET = 256  # frames: utterances are zero-padded (with zero weight) to a power of two >= this


@jax.jit
def _stats(weights: jax.Array, means: jax.Array, variances: jax.Array, x: jax.Array, valid: jax.Array
           ) -> tuple[jax.Array, jax.Array]:
    gamma = posteriors(weights, means, variances, x)[0] * valid[:, None]
    n = gamma.sum(0)
    return n, (gamma.T @ x - n[:, None] * means) / jnp.sqrt(variances)


def baum_welch(gmm: DiagGmm, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N [C], whitened centred F [C, D]) of one utterance's features [T, D]."""
    size = max(MIN_BUCKET, 1 << (len(feats) - 1).bit_length())
    x = np.zeros((size, feats.shape[1]), np.float32)
    x[:len(feats)] = feats
    valid = (np.arange(size) < len(feats)).astype(np.float32)
    n, f = _stats(jnp.asarray(gmm.weights, jnp.float32), jnp.asarray(gmm.means, jnp.float32),
                  jnp.asarray(gmm.variances, jnp.float32), jnp.asarray(x), jnp.asarray(valid))
    return np.asarray(n), np.asarray(f)


def stack_stats(gmm: DiagGmm, utterances: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Statistics of several utterances: (N [U, C], F [U, C, D])."""
    pairs = [baum_welch(gmm, u) for u in utterances]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
