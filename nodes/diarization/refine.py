"""Refinement pass: with the whole stream seen, re-cluster every stored window embedding and re-segment.

1. Speaker centroids from all (window, local speaker) embeddings, by one of ``METHODS``:
   - "online" (default): the online speakers, each centroid re-estimated from every embedding the online pass
     gave it (weighted by speech in the window), so early decisions made on little speech get revised;
   - "ahc": agglomerative clustering from scratch (average linkage on cosine distance, cut at ``ahc_threshold``);
   - "spectral": spectral clustering, number of speakers from the largest eigengap of the normalised Laplacian.
   On the 12 AMI clips (bench/RESULTS.md) "online" scores best: the constrained online assignment already
   respects cannot-link within each window, which clustering from scratch ignores.
2. Map each window's local speakers to the nearest centroids, one-to-one (as in the online pass).
3. Overlap-add all windows covering each frame (every window is available now, so latency is unlimited).
4. Smooth each speaker's frame probabilities with a two-state HMM (Viterbi): a state change costs
   ``log(switch_prob)``, which removes blips shorter than a few frames without a fixed minimum duration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.cluster.vq import kmeans2

from nodes.diarization.aggregation import hamming
from nodes.diarization.clustering import constrained_assignment, cosine_distance, unit
from stream.errors import ConfigError

METHODS = ("online", "ahc", "spectral")


@dataclass(frozen=True)
class RefineConfig:
    method: str = "online"  # "online" | "ahc" | "spectral", see the module docstring
    ahc_threshold: float = 0.65  # [0, 2] cosine distance at which agglomerative clustering stops merging
    max_speakers: int = 20  # spectral: largest number of speakers the eigengap may choose
    switch_prob: float = 1e-3  # (0, 1) HMM probability of changing state from one frame to the next
    onset: float = 0.5  # [0, 1] frame probability that counts as speech for the HMM's emission

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"RefineConfig.method={self.method!r}; choose one of {', '.join(METHODS)}")
        if not 0 < self.switch_prob < 1:
            raise ConfigError(f"RefineConfig.switch_prob={self.switch_prob} must be in (0, 1)")


def ahc(embeddings: np.ndarray, threshold: float) -> np.ndarray:
    """Cluster index per row: average-linkage agglomerative clustering cut at cosine distance ``threshold``."""
    if len(embeddings) == 1:
        return np.zeros(1, int)
    tree = linkage(unit(embeddings), method="average", metric="cosine")
    return fcluster(tree, t=threshold, criterion="distance") - 1


def eigengap_spectral(embeddings: np.ndarray, max_speakers: int, seed: int = 0) -> np.ndarray:
    """Cluster index per row: spectral clustering whose number of clusters is the largest eigengap."""
    n = len(embeddings)
    if n <= 2:
        return ahc(embeddings, 0.5) if n == 2 else np.zeros(n, int)
    affinity = np.clip(1.0 - cosine_distance(embeddings, embeddings), 0.0, None)
    np.fill_diagonal(affinity, 0.0)
    degree = affinity.sum(axis=1)
    inv_sqrt = 1.0 / np.sqrt(np.maximum(degree, 1e-12))
    laplacian = np.eye(n) - inv_sqrt[:, None] * affinity * inv_sqrt[None, :]
    values, vectors = np.linalg.eigh(laplacian)
    top = min(max_speakers, n - 1)
    k = int(np.argmax(np.diff(values[: top + 1]))) + 1
    if k == 1:
        return np.zeros(n, int)
    features = unit(vectors[:, :k])
    _, labels = kmeans2(features, k, minit="++", seed=seed)
    return np.unique(labels, return_inverse=True)[1]


MAX_CLUSTERED = 2000  # embeddings clustered directly; beyond, an even subsample is clustered (memory ~ n^2)


def cluster(embeddings: np.ndarray, config: RefineConfig) -> np.ndarray:
    """Cluster index per row. Long recordings cluster an evenly spaced subsample, then every row joins the
    nearest cluster centroid, so memory stays bounded (an hour has ~14 000 local-speaker embeddings)."""
    sample = np.linspace(0, len(embeddings) - 1, min(len(embeddings), MAX_CLUSTERED)).round().astype(int)
    picked = embeddings[sample]
    labels = (ahc(picked, config.ahc_threshold) if config.method == "ahc"
              else eigengap_spectral(picked, config.max_speakers))
    if len(sample) == len(embeddings):
        return labels
    centroids = np.stack([unit(picked[labels == k]).mean(axis=0) for k in range(labels.max() + 1)])
    return np.argmin(cosine_distance(embeddings, centroids), axis=1)


def viterbi_binarize(probs: np.ndarray, switch_prob: float, onset: float) -> np.ndarray:
    """[frames] speech probabilities -> [frames] bool, the most likely on/off path of a two-state HMM.

    Emissions are rescaled so that ``probs == onset`` is neutral between the two states.
    """
    p = np.clip(probs, 1e-6, 1 - 1e-6)
    log_on = np.log(p) - np.log(onset)
    log_off = np.log(1 - p) - np.log(1 - onset)
    stay, move = float(np.log(1 - switch_prob)), float(np.log(switch_prob))
    n = len(p)
    back = np.zeros((n, 2), bool)  # back[i, s]: the best path into state s at frame i came from "on"
    off, on = (float(log_off[0]), float(log_on[0])) if n else (0.0, 0.0)
    for i in range(1, n):
        off_off, on_off, off_on, on_on = off + stay, on + move, off + move, on + stay
        back[i, 0], back[i, 1] = on_off > off_off, on_on > off_on
        off = max(off_off, on_off) + float(log_off[i])
        on = max(off_on, on_on) + float(log_on[i])
    path = np.zeros(n, bool)
    state = on > off
    for i in range(n - 1, -1, -1):
        path[i] = state
        state = bool(back[i, int(state)])
    return path


@dataclass
class WindowRecord:
    """What the online pass keeps of one window for the refinement: where it is and what it saw."""

    first_frame: int  # grid index of its first frame (negative for windows padded before the stream start)
    activity: np.ndarray  # [frames_per_window, local] probabilities on the output grid
    embeddings: np.ndarray | None  # [local, dim], NaN rows for inactive local speakers; None if stitched
    continues: dict[int, int]  # local -> the previous window's local speaker it continues
    online: dict[int, int]  # local -> global speaker given by the online pass


def centroids_of(records: list[WindowRecord], keys: list[tuple[int, int]], emb: np.ndarray,
                 config: RefineConfig) -> tuple[np.ndarray, list[int] | None]:
    """[speakers, dim] unit centroids of the embeddings ``emb`` of (window, local) ``keys``, and for the "online"
    method the online speaker each centroid stands for (so refined speakers keep their online labels)."""
    if config.method == "online":
        labels = np.array([records[w].online.get(s, -1) for w, s in keys])
        weights = np.array([records[w].activity[:, s].mean() for w, s in keys])
    else:
        labels, weights = cluster(emb, config), np.ones(len(keys))
    found = [k for k in range(labels.max() + 1) if np.any(labels == k)]
    centroids = unit(np.stack([(weights[labels == k, None] * unit(emb[labels == k])).sum(axis=0) for k in found]))
    return centroids, (found if config.method == "online" else None)


def assign_windows(records: list[WindowRecord], tau_active: float,
                   config: RefineConfig) -> tuple[list[dict[int, int]], list[int] | None]:
    """One-to-one local speaker -> refined speaker per embedded window (stitched windows inherit the mapping of
    the speakers they continue), and the online speaker of each refined one ("online" method only)."""
    keys = [(w, s) for w, r in enumerate(records) if r.embeddings is not None for s in range(r.activity.shape[1])
            if r.activity[:, s].max() >= tau_active and np.all(np.isfinite(r.embeddings[s]))]
    mappings: list[dict[int, int]] = [{} for _ in records]
    if not keys:
        return mappings, []
    emb = np.stack([records[w].embeddings[s] for w, s in keys]).astype(np.float64)
    centroids, sources = centroids_of(records, keys, emb, config)
    dist = cosine_distance(emb, centroids)
    rows_of: dict[int, list[int]] = {}
    for i, (w, _) in enumerate(keys):
        rows_of.setdefault(w, []).append(i)
    for w, rows in rows_of.items():
        allowed = np.ones((len(rows), dist.shape[1]), bool)
        for r, c in constrained_assignment(dist[rows], allowed).items():
            mappings[w][keys[rows[r]][1]] = c
    for w, record in enumerate(records):
        if record.embeddings is None and w > 0:
            mappings[w] = {s: mappings[w - 1][p] for s, p in record.continues.items() if p in mappings[w - 1]}
    return mappings, sources


def aggregate_offline(records: list[WindowRecord], mappings: list[dict[int, int]], num_frames: int) -> np.ndarray:
    """[num_frames, speakers] Hamming-weighted mean over every window covering each frame."""
    speakers = 1 + max((c for m in mappings for c in m.values()), default=-1)
    num = np.zeros((num_frames, speakers))
    den = np.zeros(num_frames)
    for record, mapping in zip(records, mappings):
        n = len(record.activity)
        taper = hamming(n)
        lo, hi = max(record.first_frame, 0), min(record.first_frame + n, num_frames)
        if hi <= lo:
            continue
        part = slice(lo - record.first_frame, hi - record.first_frame)
        den[lo:hi] += taper[part]
        for local, k in mapping.items():
            num[lo:hi, k] += taper[part] * record.activity[part, local]
    return num / np.maximum(den, 1e-12)[:, None]


def refine(records: list[WindowRecord], num_frames: int, tau_active: float,
           config: RefineConfig) -> tuple[np.ndarray, list[int] | None]:
    """[num_frames, speakers] bool activity of the refined diarisation, and each refined speaker's online
    speaker ("online" method; None otherwise)."""
    mappings, sources = assign_windows(records, tau_active, config)
    probs = aggregate_offline(records, mappings, num_frames)
    active = (np.stack([viterbi_binarize(probs[:, k], config.switch_prob, config.onset)
                        for k in range(probs.shape[1])], axis=1) if probs.shape[1] else probs.astype(bool))
    return active, sources
