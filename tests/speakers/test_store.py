"""Enrolment store: round trip on disk, model mismatch refused, identification decisions."""

from __future__ import annotations

import numpy as np
import pytest

from nodes.speakers.calibration import Threshold
from nodes.speakers.decide import DEFAULT_COSINE, UNKNOWN, identify, verify
from nodes.speakers.store import SpeakerStore
from stream.errors import ConfigError, ModelError


def _store(tmp_path) -> SpeakerStore:
    rng = np.random.default_rng(0)
    store = SpeakerStore.open(tmp_path / "db", "campplus", dim=8, create=True)
    store.enrol("alice", rng.normal(size=(3, 8)), ["a1.flac", "a2.flac", "a3.flac"])
    store.enrol("bob", rng.normal(size=(2, 8)), ["b1.flac", "b2.flac"])
    store.enrol("alice", rng.normal(size=(1, 8)), ["a4.flac"])
    store.set_cohort(rng.normal(size=(20, 8)), [f"c{i}.flac" for i in range(20)])
    store.set_threshold(Threshold(1.5, "far", 0.01, None, True, "trials.txt"))
    store.save()
    return store


def test_round_trip(tmp_path):
    saved = _store(tmp_path)
    loaded = SpeakerStore.open(tmp_path / "db", "campplus")
    assert loaded.dim == 8 and sorted(loaded.speakers) == ["alice", "bob"]
    assert loaded.speakers["alice"].shape == (4, 8)
    assert loaded.sources["alice"][-1] == "a4.flac"
    np.testing.assert_array_equal(loaded.cohort, saved.cohort)
    assert loaded.threshold == saved.threshold
    np.testing.assert_allclose(loaded.centroids()["bob"], saved.centroid("bob"), atol=1e-6)
    assert np.linalg.norm(loaded.centroid("alice")) == pytest.approx(1.0)


def test_model_mismatch_and_bad_input(tmp_path):
    _store(tmp_path)
    with pytest.raises(ModelError, match="holds campplus embeddings"):
        SpeakerStore.open(tmp_path / "db", "xvector")
    with pytest.raises(ConfigError, match="no enrolment store"):
        SpeakerStore.open(tmp_path / "nothing", "campplus")
    store = SpeakerStore.open(tmp_path / "db", "campplus")
    with pytest.raises(ModelError, match=r"\[n >= 1, 8\]"):
        store.enrol("carol", np.ones((1, 4)), ["c.flac"])
    with pytest.raises(ModelError, match="NaN"):
        store.enrol("carol", np.full((1, 8), np.nan), ["c.flac"])
    with pytest.raises(ConfigError, match="speaker name"):
        store.enrol("a/b", np.ones((1, 8)), ["c.flac"])
    with pytest.raises(ConfigError, match="not enrolled"):
        store.centroid("carol")


def test_verify_and_identify(tmp_path):
    """Raw cosine (no cohort): an alice-like vector goes to alice; one orthogonal to both is unknown."""
    store = SpeakerStore.open(tmp_path / "db", "campplus", dim=3, create=True)
    store.enrol("alice", np.array([[1.0, 0.1, 0.0], [1.0, -0.1, 0.0]]), ["a1", "a2"])
    store.enrol("bob", np.array([[0.0, 1.0, 0.0]]), ["b1"])
    tests = np.array([[0.9, 0.2, 0.0], [0.0, 0.0, 1.0]])
    fresh = identify(store, tests)  # no calibration yet: the diarisation's cosine threshold (issue #21)
    assert [(d.name, d.threshold) for d in fresh] == [("alice", DEFAULT_COSINE), (UNKNOWN, DEFAULT_COSINE)]
    assert DEFAULT_COSINE == 0.45
    decisions = identify(store, tests, threshold=0.5)
    assert [d.name for d in decisions] == ["alice", UNKNOWN]
    assert decisions[0].score == pytest.approx(0.9 / np.hypot(0.9, 0.2))
    assert [d.accepted for d in verify(store, "bob", tests, threshold=0.5)] == [False, False]
    assert decisions[1].candidate in {"alice", "bob"} and not decisions[1].accepted


def test_corrupt_store_is_a_clear_error(tmp_path):
    _store(tmp_path)
    (tmp_path / "db" / "embeddings.npz").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="incomplete or corrupt"):
        SpeakerStore.open(tmp_path / "db")
    (tmp_path / "db" / "store.json").write_text("{")
    with pytest.raises(ConfigError, match="incomplete or corrupt"):
        SpeakerStore.open(tmp_path / "db")


def test_plda_store_scores_log_likelihood_ratios(tmp_path):
    """A store with a PLDA model (`stream verify --calibrate --backend plda`) keeps it on disk and scores with it:
    the true speaker's test embedding is accepted, another speaker's rejected, at a PLDA-calibrated threshold."""
    from nodes.speakers.plda import fit_plda

    rng = np.random.default_rng(1)
    means = rng.normal(size=(30, 8)) * 2
    labels = np.repeat(np.arange(30), 6)
    plda = fit_plda(means[labels] + rng.normal(size=(180, 8)), labels, dim=6)
    store = SpeakerStore.open(tmp_path / "db", "campplus", dim=8, create=True)
    store.enrol("alice", means[0] + rng.normal(size=(3, 8)), ["a1", "a2", "a3"])
    store.set_plda(plda)
    with pytest.raises(ConfigError, match="no calibrated threshold"):
        verify(store, "alice", means[:1])
    with pytest.raises(ConfigError, match="cosine threshold does not fit"):
        store.set_threshold(Threshold(0.5, "far", 0.01, None, False, "t.txt"))
    store.set_threshold(Threshold(0.0, "eer", 0.05, 0.05, False, "t.txt", backend="plda"))
    with pytest.raises(ConfigError, match="replaces s-norm"):
        store.set_cohort(rng.normal(size=(5, 8)), list("abcde"))
    store.save()
    loaded = SpeakerStore.open(tmp_path / "db")
    assert loaded.threshold.backend == "plda"
    tests = np.stack([means[0] + rng.normal(size=8), means[1] + rng.normal(size=8)])
    decisions = verify(loaded, "alice", tests)
    assert decisions[0].score == pytest.approx(plda.score(store.centroid("alice")[None], tests[:1])[0, 0])
    assert [d.accepted for d in decisions] == [True, False]
