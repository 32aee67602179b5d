"""PLDA and VBx on embeddings drawn from the PLDA model itself: the fit recovers the model, VBx the speakers."""

from __future__ import annotations

import numpy as np
import pytest

from nodes.diarization.refine import ahc
from nodes.diarization.vbx import vbx
from nodes.speakers.plda import Plda, fit_plda
from stream.errors import ConfigError, ModelError


def draw(rng: np.random.Generator, speakers: int, per_speaker: int, dim: int = 32,
         spread: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Unit-norm embeddings: a random direction per speaker plus isotropic within-speaker noise."""
    centres = rng.standard_normal((speakers, dim))
    labels = np.repeat(np.arange(speakers), per_speaker)
    x = centres[labels] / np.sqrt(dim) + spread * rng.standard_normal((len(labels), dim)) / np.sqrt(dim)
    return x / np.linalg.norm(x, axis=1, keepdims=True), labels


def test_plda_whitens_within_speaker_scatter():
    x, labels = draw(np.random.default_rng(0), speakers=40, per_speaker=30)
    plda = fit_plda(x, labels, dim=16)
    y = plda(x)
    within = sum(((y[labels == s] - y[labels == s].mean(0)).T @ (y[labels == s] - y[labels == s].mean(0)))
                 for s in range(40)) / len(y)
    assert np.allclose(within, np.eye(16), atol=0.05)
    assert np.all(np.diff(plda.phi) <= 0) and plda.phi[0] > 1.0  # speaker directions dominate, sorted


def test_plda_round_trip(tmp_path):
    x, labels = draw(np.random.default_rng(1), speakers=10, per_speaker=5)
    plda = fit_plda(x, labels, dim=8)
    plda.save(tmp_path / "plda")
    assert np.allclose(Plda.load(tmp_path / "plda")(x), plda(x), atol=1e-5)
    (tmp_path / "plda" / "phi.npy").unlink()
    with pytest.raises(ModelError, match="phi"):
        Plda.load(tmp_path / "plda")


def test_plda_needs_several_embeddings_per_speaker():
    with pytest.raises(ConfigError, match="several"):
        fit_plda(np.eye(4), np.arange(4))


@pytest.mark.parametrize("speakers", [2, 5, 9])
def test_vbx_merges_an_over_clustered_start_to_the_true_speakers(speakers):
    rng = np.random.default_rng(speakers)
    train, train_labels = draw(rng, speakers=60, per_speaker=20)
    plda = fit_plda(train, train_labels, dim=16)
    x, labels = draw(rng, speakers=speakers, per_speaker=25)
    init = ahc(x, 0.15)  # far too many clusters
    assert init.max() + 1 > 2 * speakers
    gamma, prior = vbx(plda(x), plda.phi, init, fa=0.2, fb=1.0)
    found = np.argmax(gamma[:, prior > 1e-3], axis=1)
    assert len(np.unique(found)) == speakers
    purity = sum(np.bincount(labels[found == k]).max() for k in np.unique(found)) / len(x)
    assert purity > 0.98
