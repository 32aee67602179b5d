"""The refinement's "auto" method (AHC unless the online speakers separate the embeddings better: silhouette) and its
clustering on isolated embeddings.

Made-up window embeddings of three voices that share a strong common direction: each voice is tight, but the
voices' mutual cosine distance (~0.6) is under the AHC cut (0.7), so AHC puts all three into one cluster.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from nodes.diarization.refine import RefineConfig, WindowRecord, centroids_of, silhouette

FRAMES, RESOLUTION = 100, 0.02


def voices(rng: np.random.Generator, windows: int) -> tuple[np.ndarray, np.ndarray]:
    """[3 * windows, dim] unit embeddings and their voice: common part 0.4, own direction 0.6, small noise."""
    dim = 32
    common, own = rng.standard_normal(dim), rng.standard_normal((3, dim))
    common, own = common / np.linalg.norm(common), own / np.linalg.norm(own, axis=1, keepdims=True)
    labels = np.repeat(np.arange(3), windows)
    x = np.sqrt(0.4) * common + np.sqrt(0.6) * own[labels] + 0.05 * rng.standard_normal((len(labels), dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True), labels


def records(x: np.ndarray, online: np.ndarray) -> tuple[list[WindowRecord], list[tuple[int, int]]]:
    """One window per embedding, one local speaker talking for the whole window, with its online speaker."""
    out = [WindowRecord(i, np.ones((FRAMES, 1)), np.stack([e, e])[None], {}, {0: int(k)})
           for i, (e, k) in enumerate(zip(x, online))]
    return out, [(i, 0) for i in range(len(out))]


def test_silhouette_scores_separation_and_one_cluster_as_zero():
    x, labels = voices(np.random.default_rng(0), 20)
    assert silhouette(x, labels) > 0.5
    assert silhouette(x, np.zeros(len(x), int)) == 0.0
    assert silhouette(x, np.random.default_rng(1).permutation(labels)) < 0.05


def test_auto_keeps_the_online_speakers_where_ahc_merges_every_voice():
    x, labels = voices(np.random.default_rng(2), 20)
    recs, keys = records(x, labels)
    ahc = centroids_of(recs, keys, x, RefineConfig(method="ahc"), RESOLUTION)
    auto = centroids_of(recs, keys, x, RefineConfig(method="auto"), RESOLUTION)
    assert len(ahc) == 1 and len(auto) == 3


def test_auto_reclusters_where_the_online_pass_merged_two_voices():
    x, labels = voices(np.random.default_rng(3), 20)
    x = x - 0.6 * x.mean(axis=0)  # take most of the common part out: AHC at 0.7 now separates the voices
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    recs, keys = records(x, np.minimum(labels, 1))  # online: voices 1 and 2 share a label
    config = RefineConfig(method="auto")
    assert len(centroids_of(recs, keys, x, replace(config, method="online"), RESOLUTION)) == 2
    assert len(centroids_of(recs, keys, x, config, RESOLUTION)) == 3


def test_isolated_embeddings_decide_the_clusters_and_the_window_embeddings_place_them():
    """Window embeddings that share the window's other voices (the common part) merge under AHC; the same voices
    embedded alone (common part gone) separate: the refinement clusters by those and finds all three, each centroid
    still in the window embeddings' space (the windows are placed by their own embeddings)."""
    x, labels = voices(np.random.default_rng(4), 20)
    alone = x - 0.6 * x.mean(axis=0)
    alone /= np.linalg.norm(alone, axis=1, keepdims=True)
    recs, keys = records(x, np.zeros(len(x), int))  # online: one speaker
    config = RefineConfig(method="auto", isolate_every=1)  # (off by default)
    assert len(centroids_of(recs, keys, x, config, RESOLUTION)) == 1  # no isolated embeddings kept
    for record, e in zip(recs, alone):
        record.isolated = e[None]
    centroids = centroids_of(recs, keys, x, config, RESOLUTION)
    assert len(centroids) == 3
    assert sorted(np.argmax(x @ centroids.T, axis=1)[::20]) == [0, 1, 2]  # each voice's windows nearest its own
    assert len(centroids_of(recs, keys, x, replace(config, isolate_every=0), RESOLUTION)) == 1
