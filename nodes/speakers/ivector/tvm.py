"""The total-variability model and i-vector extraction (Dehak et al. 2011; Kenny's EM, as in Kaldi and SIDEKIT).

An utterance's GMM mean supervector is the UBM's plus T w, with w ~ N(0, I) the i-vector. In the whitened space of
`stats.baum_welch` (T_c [D, R] per component c):

    L = I + sum_c N_c T_c' T_c        posterior precision of w [R, R]
    w = L^-1 sum_c T_c' F_c           the i-vector: posterior mean

EM over training utterances u: A_c = sum_u N_uc (L_u^-1 + w_u w_u'), C_c = sum_u F_uc w_u', T_c <- C_c A_c^-1,
followed by the minimum-divergence step T <- T chol(K), K = mean_u (L_u^-1 + w_u w_u'), which keeps the i-vectors'
prior standard normal and speeds convergence.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def init_t(key: jax.Array, components: int, dim: int, rank: int, scale: float = 0.1) -> np.ndarray:
    """Random T [C, D, R] (EM scales it: the first iterations mostly fix its size)."""
    return np.asarray(jax.random.normal(key, (components, dim, rank)) * scale)


@jax.jit
def posterior(t: jax.Array, n: jax.Array, f: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Stats N [U, C], F [U, C, D] -> (i-vectors w [U, R], posterior covariances L^-1 [U, R, R])."""
    rank = t.shape[2]
    tt = jnp.einsum("cdr,cds->crs", t, t)
    precision = jnp.eye(rank) + jnp.einsum("uc,crs->urs", n, tt)
    cov = jnp.linalg.inv(precision)
    cov = 0.5 * (cov + jnp.swapaxes(cov, 1, 2))
    w = jnp.einsum("urs,us->ur", cov, jnp.einsum("ucd,cdr->ur", f, t))
    return w, cov


@jax.jit
def em_step(t: jax.Array, n: jax.Array, f: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One EM + minimum-divergence iteration: (new T [C, D, R], mean squared i-vector norm under the old T)."""
    w, cov = posterior(t, n, f)
    second = cov + w[:, :, None] * w[:, None, :]  # E[w w'] per utterance
    a = jnp.einsum("uc,urs->crs", n, second)
    c = jnp.einsum("ucd,ur->cdr", f, w)
    t_new = jnp.swapaxes(jnp.linalg.solve(a, jnp.swapaxes(c, 1, 2)), 1, 2)
    chol = jnp.linalg.cholesky(second.mean(0))
    return jnp.einsum("cdr,rs->cds", t_new, chol), (w**2).sum(1).mean()


def extract(t: np.ndarray, n: np.ndarray, f: np.ndarray) -> np.ndarray:
    """i-vectors [U, R] of stats N [U, C], F [U, C, D]."""
    return np.asarray(posterior(jnp.asarray(t, jnp.float32), jnp.asarray(n, jnp.float32),
                                jnp.asarray(f, jnp.float32))[0])
