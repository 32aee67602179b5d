"""Refinement pass: with the whole stream seen, re-cluster every stored window embedding and re-segment.

1. Speaker centroids from all (window, local speaker) embeddings with at least ``min_speech`` s of activity,
   clustered from scratch by one of ``METHODS``:
   - "auto" (default): "ahc" or "online", whichever separates the clustered embeddings better (the higher mean
     cosine silhouette; one cluster scores 0, the usual convention). A fixed AHC cut sometimes puts every voice of
     a short recording into one cluster although the online speakers separate them well (4 of the 12 AMI clips);
     on every simulated tune meeting AHC separates better and is kept. Tune sets, refined DER % "ahc" -> "auto":
     AMI 30.4 -> 28.5, sim-tune 29.3, sim-tune-dev 27.4, sim-tune-short 29.7 (unchanged).
   - "ahc": agglomerative clustering (average linkage on cosine distance, cut at ``ahc_threshold``),
     then clusters of fewer than ``min_cluster_size`` embeddings or ``min_cluster_share`` of them join the
     nearest larger one, then clusters whose centroids are closer than ``merge_threshold`` merge;
   - "vbx": AHC over-clustering, then VBx in the PLDA space of ``nodes/diarization/plda/`` (``vbx.py``);
   - "online": the online speakers, each centroid re-estimated from every embedding the online pass gave it;
   - "spectral": spectral clustering, number of speakers from the largest eigengap of the normalised Laplacian.
   Chosen on the simulated tune meetings (2-12 speakers, bench/simulate_meetings.py) and the AMI clips, never on
   the report sets (bench/RESULTS.md, "Diarisation: speaker count"): "online" is best on the AMI clips (28.7 %) but
   keeps whatever voices the online pass merged (45 % on the tune meetings); "ahc" at 0.7 is 31.3 / 33.3 %
   there; "vbx" with the PLDA that 24 tune speakers allow is 33.0 / 34.5 %. The share and centroid merge
   (session 5) take "ahc" on the tune meetings from 31.0 to 29.5 % and the exact speaker count from 9 to 50 % of
   meetings (within one: 36 -> 73 %), AMI unchanged (31.3 %); with them, ``min_speech`` 0.5 s instead of 1 s
   gives 29.3 % and 91 % within one on the tune meetings, 30.4 % on AMI (0.25-0.75 s all within 2 points).
   With ``isolate_every`` > 0 (off by default), "ahc" and "auto" cluster isolated embeddings instead (each local
   speaker of every ``isolate_every``-th window embedded on its own frames alone, isolated.py) and take each
   cluster's centroid from the same windows' embeddings.
2. Map each window's local speakers to the nearest centroids, one-to-one (as in the online pass).
3. Overlap-add all windows covering each frame (every window is available now, so latency is unlimited).
4. Reconstruct as pyannote does: the number of speakers talking in each frame is the (rounded, taper-weighted)
   mean over the covering windows of how many local speakers are active there, and that many refined speakers,
   the most probable ones, are marked active, so a voice one window alone hears at its edge does not become
   speech (AMI, refined DER with this / with a 0.5 threshold per speaker: 29.6 / 29.8 % at 8 s windows, 29.9 /
   30.7 % at 10 s).
Refined speakers take the label of the online speaker whose (window, local speaker) pairs they share most
(one-to-one), so names and SPEAKER_k labels carry over from the live output.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.cluster.vq import kmeans2

from nodes.diarization.aggregation import hamming
from nodes.diarization.clustering import constrained_assignment, cosine_distance, unit
from nodes.diarization.vbx import vbx
from nodes.speakers.plda import Plda
from stream.errors import ConfigError

METHODS = ("auto", "ahc", "vbx", "online", "spectral")
PLDA_DIR = Path(__file__).parent / "plda"  # fitted by bench/train_plda.py on the simulated tune sessions


@dataclass(frozen=True)
class RefineConfig:
    method: str = "auto"  # "auto" | "ahc" | "vbx" | "online" | "spectral", see the module docstring
    ahc_threshold: float = 0.7  # [0, 2] cosine distance at which agglomerative clustering stops merging ("ahc")
    vbx_init_threshold: float = 0.7  # [0, 2] the AHC cut that initialises VBx
    vbx_fa: float = 0.05  # (0, 1] VBx acoustic scaling: < 1 because overlapping windows' embeddings are not
    #   independent
    vbx_fb: float = 1.0  # > 0 VBx speaker prior scaling: larger keeps fewer, broader speakers
    min_prior: float = 1e-3  # VBx speakers whose prior ends below this are dropped (their windows re-assigned)
    min_speech: float = 0.5  # s of activity for a local speaker's embedding to be clustered (shorter ones are only
    #   assigned to the clusters found): too little speech gives noisy embeddings that open phantom speakers
    merge_threshold: float = 0.45  # [0, 2] after clustering, clusters whose centroids are closer than this cosine
    #   distance merge, closest pair first (0 = never)
    min_cluster_share: float = 0.02  # [0, 1) clusters with fewer than this share of the embeddings join the
    #   nearest larger one too (the count of windows a voice fills grows with the recording)
    min_cluster_size: int = 4  # >= 1, clusters of fewer embeddings (one per local speaker and window) join the
    #   nearest larger one
    max_speakers: int = 20  # spectral: largest number of speakers the eigengap may choose
    isolate_every: int = 0  # > 0: every this many windows (8 = 4 s apart at 0.5 s steps) embed each local speaker
    #   alone and cluster those (isolated.py; file mode only, about +0.05 CPU s per audio s at 8); 0 = cluster the
    #   window embeddings. Off: on the tune sets it gains on short and mid-length meetings and loses on long ones
    #   (bench/RESULTS.md, "Diarisation: isolated embeddings for the refinement")
    isolated_threshold: float = 0.7  # [0, 2] the AHC cut on isolated embeddings ("ahc", "auto")
    plda: str = ""  # folder of the PLDA model for "vbx" ("" = the shipped one, nodes/diarization/plda/)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"RefineConfig.method={self.method!r}; choose one of {', '.join(METHODS)}")
        checks = {"ahc_threshold": 0 <= self.ahc_threshold <= 2, "vbx_init_threshold": 0 <= self.vbx_init_threshold <= 2,
                  "vbx_fa": 0 < self.vbx_fa <= 1, "vbx_fb": self.vbx_fb > 0, "min_prior": 0 <= self.min_prior < 1,
                  "min_speech": self.min_speech >= 0,
                  "merge_threshold": 0 <= self.merge_threshold <= 2,
                  "min_cluster_share": 0 <= self.min_cluster_share < 1, "min_cluster_size": self.min_cluster_size >= 1,
                  "isolate_every": self.isolate_every >= 0, "isolated_threshold": 0 <= self.isolated_threshold <= 2}
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(f"RefineConfig: out of range: {', '.join(f'{b}={getattr(self, b)}' for b in bad)}")


@lru_cache(maxsize=4)
def load_plda(folder: str) -> Plda:
    return Plda.load(Path(folder) if folder else PLDA_DIR)


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


def evenly(n: int) -> np.ndarray:
    """Indices of an even subsample of at most ``MAX_CLUSTERED`` of ``n`` rows (all of them if there are fewer)."""
    return np.linspace(0, n - 1, min(n, MAX_CLUSTERED)).round().astype(int)


def vbx_cluster(embeddings: np.ndarray, config: RefineConfig) -> np.ndarray:
    """Cluster index per row: AHC over-clustering, then VBx in PLDA space; speakers VBx finds unneeded vanish."""
    init = ahc(embeddings, config.vbx_init_threshold)
    if init.max() == 0:
        return init
    plda = load_plda(config.plda)
    gamma, prior = vbx(plda(embeddings), plda.phi, init, config.vbx_fa, config.vbx_fb)
    kept = np.flatnonzero(prior >= max(config.min_prior, 1e-12))
    labels = kept[np.argmax(gamma[:, kept], axis=1)]
    return np.unique(labels, return_inverse=True)[1]


CLUSTERERS = {"ahc": lambda emb, cfg: ahc(emb, cfg.ahc_threshold), "vbx": vbx_cluster,
              "spectral": lambda emb, cfg: eigengap_spectral(emb, cfg.max_speakers)}


def cluster(embeddings: np.ndarray, config: RefineConfig) -> np.ndarray:
    """Cluster index per row. Long recordings cluster an evenly spaced subsample, then every row joins the
    nearest cluster centroid, so memory stays bounded (an hour has ~14 000 local-speaker embeddings)."""
    sample = evenly(len(embeddings))
    picked = embeddings[sample]
    min_size = max(config.min_cluster_size, int(np.ceil(config.min_cluster_share * len(picked))))
    labels = absorb_small(picked, CLUSTERERS[config.method](picked, config), min_size)
    labels = merge_close(picked, labels, config.merge_threshold)
    if len(sample) == len(embeddings):
        return labels
    centroids = np.stack([unit(picked[labels == k]).mean(axis=0) for k in range(labels.max() + 1)])
    return np.argmin(cosine_distance(embeddings, centroids), axis=1)


def merge_close(embeddings: np.ndarray, labels: np.ndarray, threshold: float) -> np.ndarray:
    """Merge the two clusters with the closest centroids while they are closer than ``threshold``: average
    linkage between noisy window embeddings splits one voice heard in two rooms or moods; whole-cluster
    centroids are far steadier (tune meetings: same-voice half-centroids >= 0.60 cosine similarity in 95 % of
    speakers, different voices <= 0.50 in 99 % of pairs). Indices renumbered from 0."""
    labels = np.unique(labels, return_inverse=True)[1]
    sums = np.stack([unit(embeddings[labels == k]).sum(axis=0) for k in range(labels.max() + 1)])
    while len(sums) > 1:
        dist = cosine_distance(sums, sums) + 3.0 * np.eye(len(sums))
        i, j = np.unravel_index(np.argmin(dist), dist.shape)
        if dist[i, j] >= threshold:
            break
        i, j = min(i, j), max(i, j)
        sums[i] += sums[j]
        sums = np.delete(sums, j, axis=0)
        labels[labels == j] = i
        labels[labels > j] -= 1
    return labels


def absorb_small(embeddings: np.ndarray, labels: np.ndarray, min_size: int) -> np.ndarray:
    """Clusters of fewer than ``min_size`` rows join the nearest larger cluster (as pyannote's min_cluster_size):
    a handful of windows is a noisy embedding or a cough, not a new participant. Indices renumbered from 0."""
    sizes = np.bincount(labels)
    big = np.flatnonzero(sizes >= min_size)
    if len(big) == 0 or len(big) == len(sizes):
        return np.unique(labels, return_inverse=True)[1]
    centroids = np.stack([unit(embeddings[labels == k]).mean(axis=0) for k in big])
    small = ~np.isin(labels, big)
    labels = labels.copy()
    labels[small] = big[np.argmin(cosine_distance(embeddings[small], centroids), axis=1)]
    return np.unique(labels, return_inverse=True)[1]


@dataclass
class WindowRecord:
    """What the online pass keeps of one window for the refinement: where it is and what it saw."""

    first_frame: int  # grid index of its first frame (negative for windows padded before the stream start)
    activity: np.ndarray  # [frames_per_window, local] probabilities on the output grid
    embeddings: np.ndarray | None  # [local, 2, dim] whole-window and tail embeddings, NaN for speakers inactive
    #   there; None if stitched
    continues: dict[int, int]  # local -> the previous window's local speaker it continues
    online: dict[int, int]  # local -> global speaker given by the online pass
    isolated: np.ndarray | None = None  # [local, dim] embeddings of each local speaker's frames alone, NaN where
    #   too short (isolated.py); every ``RefineConfig.isolate_every``-th window, None elsewhere


def silhouette(embeddings: np.ndarray, labels: np.ndarray) -> float:
    """Mean cosine silhouette of the rows labelled >= 0 (an even subsample of at most ``MAX_CLUSTERED``: memory
    ~ n^2); 0 with fewer than two clusters (Rousseeuw's convention: one cluster has no separation to measure)."""
    rows = np.flatnonzero(labels >= 0)
    rows = rows[evenly(len(rows))]
    labels = labels[rows]
    clusters = np.unique(labels)
    if len(clusters) < 2:
        return 0.0
    dist = cosine_distance(embeddings[rows], embeddings[rows])
    own, other = np.zeros(len(rows)), np.full(len(rows), np.inf)
    for k in clusters:
        member = labels == k
        mean = dist[:, member].sum(axis=1)
        own = np.where(member, mean / max(member.sum() - 1, 1), own)
        other = np.where(member, other, np.minimum(other, mean / member.sum()))
    return float(np.mean((other - own) / np.maximum(np.maximum(own, other), 1e-12)))


def centroids_of(records: list[WindowRecord], keys: list[tuple[int, int]], emb: np.ndarray,
                 config: RefineConfig, resolution: float) -> np.ndarray:
    """[speakers, dim] unit centroids, among the window embeddings ``emb`` of (window, local) ``keys``, of the
    online speakers ("online") or of clusters found afresh (`clustering_view` says on which embeddings); "auto"
    takes whichever of the two separates those embeddings better."""
    online = np.array([records[w].online.get(s, -1) for w, s in keys])
    rows, view, config = clustering_view(records, keys, emb, config, resolution)
    fresh = None  # the view clustered afresh, once
    if config.method == "auto":
        fresh = cluster(view, replace(config, method="ahc"))
        use_online = silhouette(view, online[rows]) > silhouette(view, fresh)
    else:
        use_online = config.method == "online"
    if use_online:
        labels = online
        weights = np.array([records[w].activity[:, s].mean() for w, s in keys])
    else:
        labels = cluster(view, config) if fresh is None else fresh
        emb, weights = emb[rows], np.ones(len(rows))
    found = [k for k in range(labels.max(initial=-1) + 1) if np.any(labels == k)]
    return unit(np.stack([(weights[labels == k, None] * unit(emb[labels == k])).sum(axis=0) for k in found]
                         or [np.zeros(emb.shape[1])]))


def clustering_view(records: list[WindowRecord], keys: list[tuple[int, int]], emb: np.ndarray, config: RefineConfig,
                    resolution: float) -> tuple[np.ndarray, np.ndarray, RefineConfig]:
    """(rows of ``keys`` to cluster afresh, the embeddings to cluster them by, the config to cluster with).

    "ahc" and "auto" cluster the isolated embeddings where the windows have them (isolated.py: cut at
    ``isolated_threshold``, and as only every ``isolate_every``-th window has them, ``min_cluster_size`` counts
    that many windows per embedding); otherwise the window embeddings with at least ``min_speech`` s of activity
    (all of them if none has)."""
    if config.isolate_every and config.method in ("ahc", "auto"):
        rows = [i for i, (w, s) in enumerate(keys)
                if records[w].isolated is not None and np.isfinite(records[w].isolated[s, 0])]
        if len(rows) >= 2:
            view = np.stack([records[keys[i][0]].isolated[keys[i][1]] for i in rows]).astype(np.float64)
            size = max(1, -(-config.min_cluster_size // config.isolate_every))
            return np.array(rows), view, replace(config, ahc_threshold=config.isolated_threshold, min_cluster_size=size)
    speech = np.array([records[w].activity[:, s].sum() * resolution for w, s in keys])
    clean = speech >= config.min_speech if np.any(speech >= config.min_speech) else np.ones(len(keys), bool)
    return np.flatnonzero(clean), emb[clean], config


def online_sources(records: list[WindowRecord], mappings: list[dict[int, int]], speakers: int) -> list[int]:
    """For each refined speaker, the online speaker whose (window, local speaker) pairs it shares most, matched
    one-to-one weighted by speech (-1 for a refined speaker with no online counterpart)."""
    online = 1 + max((k for r in records for k in r.online.values()), default=-1)
    shared = np.zeros((speakers, online))
    for record, mapping in zip(records, mappings):
        for local, k in mapping.items():
            if local in record.online:
                shared[k, record.online[local]] += record.activity[:, local].sum()
    sources = [-1] * speakers
    for k, j in constrained_assignment(-shared, shared > 0).items():
        sources[k] = j
    return sources


def assign_windows(records: list[WindowRecord], tau_active: float, config: RefineConfig,
                   resolution: float) -> list[dict[int, int]]:
    """One-to-one local speaker -> refined speaker per embedded window (stitched windows inherit the mapping of
    the speakers they continue)."""
    keys = [(w, s) for w, r in enumerate(records) if r.embeddings is not None for s in range(r.activity.shape[1])
            if r.activity[:, s].max() >= tau_active and np.all(np.isfinite(r.embeddings[s, 0]))]
    mappings: list[dict[int, int]] = [{} for _ in records]
    if not keys:
        return mappings
    emb = np.stack([records[w].embeddings[s, 0] for w, s in keys]).astype(np.float64)
    dist = cosine_distance(emb, centroids_of(records, keys, emb, config, resolution))
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
    return mappings


def overlap_add(records: list[WindowRecord], values: Iterable[np.ndarray], num_frames: int, width: int) -> np.ndarray:
    """[num_frames, width] Hamming-weighted mean, over every window covering each frame, of the windows'
    ``values`` (one [window frames, width] array per record, in order; a generator keeps memory flat)."""
    num = np.zeros((num_frames, width))
    den = np.zeros(num_frames)
    for record, value in zip(records, values):
        n = len(record.activity)
        lo, hi = max(record.first_frame, 0), min(record.first_frame + n, num_frames)
        if hi <= lo:
            continue
        part = slice(lo - record.first_frame, hi - record.first_frame)
        taper = hamming(n)[part]
        num[lo:hi] += taper[:, None] * value[part]
        den[lo:hi] += taper
    return num / np.maximum(den, 1e-12)[:, None]


def aggregate_offline(records: list[WindowRecord], mappings: list[dict[int, int]], num_frames: int) -> np.ndarray:
    """[num_frames, speakers] Hamming-weighted mean over every window covering each frame."""
    speakers = 1 + max((c for m in mappings for c in m.values()), default=-1)

    def on_speakers(record: WindowRecord, mapping: dict[int, int]) -> np.ndarray:
        out = np.zeros((len(record.activity), speakers))
        for local, k in mapping.items():
            out[:, k] = record.activity[:, local]
        return out

    return overlap_add(records, (on_speakers(r, m) for r, m in zip(records, mappings)), num_frames, speakers)


def speaker_count(records: list[WindowRecord], num_frames: int, onset: float = 0.5) -> np.ndarray:
    """[num_frames] int: speakers talking per frame, the rounded Hamming-weighted mean over the windows covering
    it of their number of local speakers above ``onset``."""
    counts = ((r.activity > onset).sum(axis=1, keepdims=True) for r in records)
    return np.floor(overlap_add(records, counts, num_frames, 1)[:, 0] + 0.5).astype(int)


def top_speakers(probs: np.ndarray, count: np.ndarray) -> np.ndarray:
    """[frames, speakers] bool: in each frame the ``count`` most probable speakers (those with probability > 0)."""
    order = np.argsort(-probs, axis=1)
    active = np.zeros(probs.shape, bool)
    for rank in range(probs.shape[1]):
        rows = np.flatnonzero(count > rank)
        active[rows, order[rows, rank]] = True
    return active & (probs > 0)


def refine(records: list[WindowRecord], num_frames: int, tau_active: float, config: RefineConfig,
           resolution: float) -> tuple[np.ndarray, list[int]]:
    """[num_frames, speakers] bool activity of the refined diarisation, and each refined speaker's online
    speaker (-1 if none)."""
    mappings = assign_windows(records, tau_active, config, resolution)
    probs = aggregate_offline(records, mappings, num_frames)
    active = top_speakers(probs, speaker_count(records, num_frames))
    return active, online_sources(records, mappings, probs.shape[1])
