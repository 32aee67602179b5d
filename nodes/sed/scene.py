"""Acoustic scene label: multinomial logistic regression on mean-pooled YAMNet embeddings.

A clip's feature is the mean of its 1024-d YAMNet embeddings (0.96 s patches every `hop` s), standardised with the
training set's mean and spread; the classifier is softmax(W x + b), fitted by L-BFGS on cross-entropy + L2.
Light on purpose: a few labelled recordings per scene are enough, and it costs one matmul per decision on top
of the YAMNet the SED node already runs. Saved as .npz (labels, standardisation, weights, hop), loaded by the node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax

from nodes.sed.teach import patch_embeddings
from nodes.sed.yamnet import EMBEDDING, Yamnet
from stream.errors import ConfigError, ModelError

FORMAT = "stream-scene-v1"


def clip_embedding(model: Yamnet, waveform: np.ndarray, hop: float = 0.48) -> np.ndarray:
    """Mean of the clip's YAMNet embeddings [1024] (patches every `hop` s, as `stream teach` cuts them)."""
    embeddings, _ = patch_embeddings(model, waveform, hop)
    return embeddings.mean(axis=0)


@dataclass(frozen=True)
class SceneClassifier:
    labels: tuple[str, ...]
    mean: np.ndarray  # [1024] standardisation of the pooled embedding
    scale: np.ndarray  # [1024]
    kernel: np.ndarray  # [1024, classes]
    bias: np.ndarray  # [classes]
    hop: float  # s between patches the embeddings were pooled over

    def probabilities(self, pooled: np.ndarray) -> np.ndarray:
        """[N, 1024] mean-pooled embeddings -> [N, classes] probabilities."""
        x = (np.asarray(pooled, np.float64) - self.mean) / self.scale
        return np.exp(log_softmax(x @ self.kernel + self.bias, axis=-1))

    def predict(self, pooled: np.ndarray) -> list[str]:
        return [self.labels[i] for i in self.probabilities(pooled).argmax(-1)]

    def save(self, path: Path) -> None:
        with open(path, "wb") as f:  # a file object: np.savez would append .npz to another suffix
            np.savez(f, format=FORMAT, labels=np.array(self.labels), mean=self.mean, scale=self.scale,
                     kernel=self.kernel, bias=self.bias, hop=self.hop)

    @classmethod
    def load(cls, path: Path) -> SceneClassifier:
        try:
            with np.load(path) as f:
                if str(f["format"]) != FORMAT:
                    raise ModelError(f"{path} is a {f['format']} file, not a scene classifier ({FORMAT})")
                out = cls(tuple(str(s) for s in f["labels"]), f["mean"], f["scale"], f["kernel"], f["bias"],
                          float(f["hop"]))
        except (OSError, KeyError, ValueError) as exc:
            raise ModelError(f"cannot read scene classifier {path} ({exc}): make one with `stream train-scene`") from exc
        if out.kernel.shape != (EMBEDDING, len(out.labels)):
            raise ModelError(f"{path}: weights {out.kernel.shape} do not fit {len(out.labels)} labels")
        return out


def fit(pooled: np.ndarray, labels: Sequence[str], l2: float = 1e-2, hop: float = 0.48) -> SceneClassifier:
    """Fit on [N, 1024] pooled embeddings with one label each (at least two classes)."""
    names = tuple(sorted(set(labels)))
    if len(names) < 2:
        raise ConfigError(f"a scene classifier needs at least two labels, got {names}")
    x = np.asarray(pooled, np.float64)
    mean, scale = x.mean(0), x.std(0) + 1e-6
    x = (x - mean) / scale
    y = np.array([names.index(label) for label in labels])
    onehot = np.eye(len(names))[y]
    n, k = len(x), len(names)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[: -k].reshape(EMBEDDING, k), theta[-k:]
        logp = log_softmax(x @ w + b, axis=-1)
        grad_logits = (np.exp(logp) - onehot) / n
        value = -(onehot * logp).sum() / n + 0.5 * l2 * (w * w).sum()
        return value, np.concatenate([(x.T @ grad_logits + l2 * w).ravel(), grad_logits.sum(0)])

    theta = minimize(loss, np.zeros(EMBEDDING * k + k), jac=True, method="L-BFGS-B", options={"maxiter": 500}).x
    return SceneClassifier(names, mean, scale, theta[: -k].reshape(EMBEDDING, k), theta[-k:], hop)
