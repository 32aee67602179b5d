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
