"""VBx clustering (Landini et al., "Bayesian HMM clustering of x-vector sequences (VBx) in speaker diarization",
2022), the GMM variant that pyannote 4 uses on window embeddings: a Bayesian mixture whose components are speakers.

Why: agglomerative clustering cut at a fixed cosine threshold merges distinct voices when embeddings are noisy (short
windows, overlap, reverberation) and splits one voice when its windows vary. VBx starts from an over-clustered AHC
solution and lets each speaker's posterior explain the embeddings under the PLDA model: a speaker is kept only if
the embeddings it explains justify it, so the number of speakers follows the evidence rather than one threshold.

Model (embeddings already in PLDA space, within-speaker covariance I, between-speaker diag(``phi``)): each
embedding x_n belongs to one speaker s with prior pi_s; a speaker's latent y_s ~ N(0, I) places its mean at
sqrt(phi) * y_s. ``fa`` scales the acoustic likelihood (embeddings of overlapping windows are not independent) and
``fb`` the speaker-model prior (larger = fewer, broader speakers).
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp, softmax


def vbx(features: np.ndarray, phi: np.ndarray, init: np.ndarray, fa: float, fb: float, max_iters: int = 20,
        tolerance: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """Responsibilities [n, speakers] and speaker priors [speakers] after variational Bayes.

    features: [n, dim] PLDA features; phi: [dim] between-speaker variances; init: [n] initial cluster index (AHC).
    """
    speakers = int(init.max()) + 1
    gamma = np.eye(speakers)[init]
    pi = np.full(speakers, 1.0 / speakers)
    constant = -0.5 * ((features ** 2).sum(axis=1) + features.shape[1] * np.log(2 * np.pi))  # [n]
    rho = features * np.sqrt(phi)  # [n, dim]
    previous = -np.inf
    for _ in range(max_iters):
        inv_l = 1.0 / (1.0 + (fa / fb) * gamma.sum(axis=0)[:, None] * phi)  # [speakers, dim] posterior variances
        alpha = (fa / fb) * inv_l * (gamma.T @ rho)  # [speakers, dim] posterior means
        log_p = fa * (rho @ alpha.T - 0.5 * (inv_l + alpha ** 2) @ phi + constant[:, None])  # [n, speakers]
        joint = log_p + np.log(np.maximum(pi, 1e-300))
        gamma = softmax(joint, axis=1)
        pi = gamma.sum(axis=0) / len(gamma)
        elbo = logsumexp(joint, axis=1).sum() + 0.5 * fb * (np.log(inv_l) - inv_l - alpha ** 2 + 1).sum()
        if elbo - previous < tolerance * abs(elbo):
            break
        previous = elbo
    return gamma, pi
