"""Two-covariance PLDA for speaker embeddings: fitted from labelled embeddings, applied as a linear transform.

Why: cosine similarity treats every embedding direction alike, but some directions carry speaker identity and
others channel, room and phonetic content. PLDA models an embedding as ``speaker + residual`` with between-speaker
covariance B and within-speaker covariance W, both Gaussian. After the transform fitted here (centre, LDA to
``dim`` dimensions, length-normalise, then the simultaneous diagonalisation of W and B) the residual is white
(W = I) and the speaker part has diagonal covariance ``phi``: the form VBx clustering (``nodes/diarization/vbx.py``)
and PLDA log-likelihood-ratio scoring both take. The recipe is the Kaldi / BUT one (Garcia-Romero & Espy-Wilson
2011 for the length normalisation).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stream.errors import ConfigError, ModelError

_FIELDS = ("mean", "lda", "mean2", "transform", "phi")


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _scatter(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(within-speaker, between-speaker) covariance of ``x`` [n, d] grouped by ``labels``."""
    d = x.shape[1]
    within, between, mu = np.zeros((d, d)), np.zeros((d, d)), x.mean(axis=0)
    speakers = np.unique(labels)
    for s in speakers:
        xs = x[labels == s]
        centred = xs - xs.mean(axis=0)
        within += centred.T @ centred
        delta = (xs.mean(axis=0) - mu)[:, None]
        between += len(xs) * (delta @ delta.T)
    return within / len(x), between / len(x)


@dataclass(frozen=True)
class Plda:
    """The fitted transform: embedding [D] -> PLDA space [dim] where W = I and B = diag(phi)."""

    mean: np.ndarray  # [D] mean of the unit embeddings
    lda: np.ndarray  # [D, dim] LDA projection
    mean2: np.ndarray  # [dim] mean after LDA and length normalisation
    transform: np.ndarray  # [dim, dim] simultaneous diagonalisation (rows: directions)
    phi: np.ndarray  # [dim] between-speaker variances in the diagonalised space, descending

    @property
    def dim(self) -> int:
        return len(self.phi)

    def __call__(self, embeddings: np.ndarray) -> np.ndarray:
        """[n, D] embeddings -> [n, dim] PLDA features."""
        x = _unit(np.asarray(embeddings, np.float64)) - self.mean
        x = _unit(x @ self.lda) * np.sqrt(self.dim)
        return (x - self.mean2) @ self.transform.T

    def score(self, enrol: np.ndarray, test: np.ndarray) -> np.ndarray:
        """Log-likelihood ratios [N, M] of same versus different speaker for embeddings enrol [N, D], test [M, D].

        Per PLDA dimension (W = 1, B = phi): same speaker, the pair is Gaussian with covariance
        [[phi + 1, phi], [phi, phi + 1]]; different speakers, independent with variance phi + 1. The ratio of the
        two densities is a quadratic form, summed over the (independent) dimensions.
        """
        a, b, phi = self(enrol), self(test), self.phi
        total, det = phi + 1, 2 * phi + 1
        quad = 0.5 * (1 / total - total / det)  # weight of x^2 on either side
        const = np.sum(np.log(total) - 0.5 * np.log(det))
        return (a**2 @ quad)[:, None] + (b**2 @ quad)[None, :] + (a * (phi / det)) @ b.T + const

    def save(self, folder: Path) -> None:
        """One .npy file per field (plain arrays, no pickle), so the fitted model can live in the repository."""
        folder.mkdir(parents=True, exist_ok=True)
        for name in _FIELDS:
            np.save(folder / f"{name}.npy", getattr(self, name).astype(np.float32))

    @classmethod
    def load(cls, folder: Path) -> Plda:
        missing = [name for name in _FIELDS if not (folder / f"{name}.npy").exists()]
        if missing:
            raise ModelError(f"PLDA model in {folder} lacks {', '.join(missing)}.npy: refit it "
                             "(python bench/train_plda.py)")
        return cls(*(np.load(folder / f"{name}.npy", allow_pickle=False).astype(np.float64) for name in _FIELDS))


def fit_plda(embeddings: np.ndarray, labels: np.ndarray, dim: int = 128) -> Plda:
    """Fit on [n, D] embeddings of several utterances (or windows) per speaker; ``labels`` [n] speaker ids."""
    labels = np.asarray(labels)
    speakers = len(np.unique(labels))
    if speakers < 2 or len(labels) <= speakers:
        raise ConfigError(f"PLDA needs several speakers with several embeddings each; got {len(labels)} embeddings "
                          f"of {speakers} speakers")
    x = _unit(np.asarray(embeddings, np.float64))
    mean, lda = fit_lda(x, labels, dim)
    dim = lda.shape[1]
    y = _unit((x - mean) @ lda) * np.sqrt(dim)
    mean2 = y.mean(axis=0)
    within, between = _scatter(y - mean2, labels)
    directions, phi = _diagonalise(within, between)
    return Plda(mean, lda, mean2, directions.T, phi)


def fit_lda(x: np.ndarray, labels: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Linear discriminant analysis of [n, D] vectors by speaker: (mean [D], projection [D, d]), d = min(dim, D,
    speakers - 1); the projected within-speaker covariance is I, directions ordered by between-speaker variance."""
    dim = min(dim, x.shape[1], len(np.unique(labels)) - 1)
    mean = x.mean(axis=0)
    within, between = _scatter(x - mean, np.asarray(labels))
    return mean, _diagonalise(within, between)[0][:, :dim]


def _diagonalise(within: np.ndarray, between: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Columns V with V^T W V = I and V^T B V = diag(phi), phi descending (generalised eigenproblem)."""
    within = within + 1e-6 * np.trace(within) / len(within) * np.eye(len(within))
    values, vectors = np.linalg.eigh(within)
    whiten = vectors / np.sqrt(np.maximum(values, 1e-12))
    phi, rotation = np.linalg.eigh(whiten.T @ between @ whiten)
    order = np.argsort(-phi)
    return whiten @ rotation[:, order], np.maximum(phi[order], 1e-9)
