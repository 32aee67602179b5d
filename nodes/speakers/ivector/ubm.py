"""The universal background model: a diagonal-covariance GMM over i-vector features, trained by EM.

Training grows it by binary splitting (1 -> 2 -> ... -> C components, each mean moved +-0.2 standard deviations
along every dimension, a few EM iterations after each split, more at the end), as SIDEKIT and HTK do; variances
are floored at 1 % of the global variance so a component cannot collapse onto a few frames.
"""

from __future__ import annotations

from dataclasses import dataclass
import jax
import jax.numpy as jnp
import numpy as np

CHUNK = 16384  # frames per jitted E-step call (fixed shape: one compilation per model size)
VAR_FLOOR = 0.01  # x global variance


@dataclass(frozen=True)
class DiagGmm:
    weights: np.ndarray  # [C]
    means: np.ndarray  # [C, D]
    variances: np.ndarray  # [C, D]

    @property
    def size(self) -> int:
        return len(self.weights)


def single(x: np.ndarray) -> DiagGmm:
    """The one-component GMM of frames [T, D]: where splitting starts."""
    return DiagGmm(np.ones(1), x.mean(axis=0, keepdims=True), x.var(axis=0, keepdims=True))


def split(gmm: DiagGmm, offset: float = 0.2) -> DiagGmm:
    """Every component into two, means +-offset standard deviations apart; weights halved."""
    step = offset * np.sqrt(gmm.variances)
    return DiagGmm(np.repeat(gmm.weights / 2, 2), np.stack([gmm.means - step, gmm.means + step], 1).reshape(
        -1, gmm.means.shape[1]), np.repeat(gmm.variances, 2, axis=0))


@jax.jit
def log_joint(weights: jax.Array, means: jax.Array, variances: jax.Array, x: jax.Array) -> jax.Array:
    """log w_c + log N(x_t; mu_c, diag var_c) for frames [T, D] -> [T, C]."""
    precision = 1.0 / variances
    const = jnp.log(weights) - 0.5 * (jnp.log(2 * jnp.pi * variances).sum(1) + (means**2 * precision).sum(1))
    return const - 0.5 * (x**2) @ precision.T + x @ (means * precision).T


@jax.jit
def posteriors(weights: jax.Array, means: jax.Array, variances: jax.Array, x: jax.Array
               ) -> tuple[jax.Array, jax.Array]:
    """(component posteriors [T, C], per-frame log-likelihood [T])."""
    joint = log_joint(weights, means, variances, x)
    total = jax.scipy.special.logsumexp(joint, axis=1)
    return jnp.exp(joint - total[:, None]), total


@jax.jit
def _accumulate(weights: jax.Array, means: jax.Array, variances: jax.Array, x: jax.Array, valid: jax.Array
                ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    gamma, loglik = posteriors(weights, means, variances, x)
    gamma = gamma * valid[:, None]
    return gamma.sum(0), gamma.T @ x, gamma.T @ (x**2), (loglik * valid).sum()


def em_step(gmm: DiagGmm, x: np.ndarray, floor: np.ndarray) -> tuple[DiagGmm, float]:
    """One EM iteration over frames [T, D]: (new GMM, average log-likelihood per frame under the old one)."""
    c, d = gmm.means.shape
    n, f, s, total = np.zeros(c), np.zeros((c, d)), np.zeros((c, d)), 0.0
    params = (jnp.asarray(gmm.weights, jnp.float32), jnp.asarray(gmm.means, jnp.float32),
              jnp.asarray(gmm.variances, jnp.float32))
    for start in range(0, len(x), CHUNK):
        chunk = x[start:start + CHUNK]
        valid = np.zeros(CHUNK, np.float32)
        valid[:len(chunk)] = 1.0
        chunk = np.pad(chunk, ((0, CHUNK - len(chunk)), (0, 0)))
        out = _accumulate(*params, jnp.asarray(chunk), jnp.asarray(valid))
        n, f, s = n + np.asarray(out[0], np.float64), f + np.asarray(out[1], np.float64), s + np.asarray(
            out[2], np.float64)
        total += float(out[3])
    n = np.maximum(n, 1e-3)
    means = f / n[:, None]
    variances = np.maximum(s / n[:, None] - means**2, floor)
    return DiagGmm(n / n.sum(), means, variances), total / len(x)


def schedule(components: int, iters_per_split: int, final_iters: int) -> list[bool]:
    """The EM plan as one flag per iteration: True = split before this iteration (sizes 1 -> `components`)."""
    splits = int(np.log2(components))
    plan: list[bool] = []
    for _ in range(splits):
        plan += [True] + [False] * (iters_per_split - 1)
    return plan + [False] * final_iters
