"""Online speaker clustering: map each window's local speakers to global speakers that persist across windows.

The diart algorithm (Coria et al., ASRU 2021), written for this project: each window's active local speakers
(segmentation max >= ``tau_active``) get one embedding each; a constrained assignment (Hungarian method, so two
local speakers of one window never share a global speaker) matches them to global centroids; a local speaker
farther than ``delta_new`` from every free centroid opens a new global speaker; matched speakers with enough
speech in the window (mean activity >= ``rho_update``) move their centroid.

New speakers, calibrated (not in diart): a local speaker opens a new global speaker only when it is farther than
``delta_new`` from every free centroid *and* talks for at least ``rho_new`` of the window; a shorter voice joins
the closest centroid. Measured on the simulated tune meetings (labelled window embeddings, similarity to the
speaker's running centroid vs the best other one): with under 1 s of speech the two overlap (own < other for
21-28 % of windows), with 2 s or more they separate (own 5th percentile 0.46-0.58, other 95th 0.45-0.47), so
doubts about a short voice are noise, not a newcomer. ``delta_new`` 0.75 / ``rho_new`` 0.2 (1.6 s of an 8 s
window) took online DER at 0.5 s on the tune meetings from 60.9 to 51.1 % (AMI clips 32.5 -> 32.4 %); diart's
1.0 (a new voice only below similarity 0) merged most voices of a meeting into 2-4. For the same reason a
speaker whose centroid holds only a few windows (norm below ``young``) accepts any voice: in its first seconds
a two-speaker AMI clip otherwise opened a third speaker for a voice it already had (neutral on the tune meetings,
51.1 -> 51.0 %, and the AMI clips, 32.4 -> 32.5 %). With the young speakers and the tail embeddings below,
``delta_new`` 0.7 instead of 0.75 opens the voices of many-speaker meetings that 0.75 merged (online 0.5 s on
the tune meetings 44.1 -> 41.1 %, on the held-out tune-dev ones 44.7 -> 43.7 %, AMI 31.4 % both; 0.65 costs AMI
3 points: bench/RESULTS.md, "Diarisation: new-speaker distance re-tuned").

Re-clustering (optional): every ``recluster_every`` embedded windows the embeddings that moved centroids (at
most ``history``, evenly thinned) are clustered afresh (``recluster``, AHC in the diarisation chain) and the
anonymous centroids are replaced by the clusters, each keeping the label most of its members had. It helped the
old rule (tune 61.6 -> 57.2 %) but hurts the calibrated one (49.7 -> 55 %, splitting voices), so it is off (0).

Tails (not in diart): at a turn change segmentation-3.0 often lets a newcomer's first second continue the local
speaker of someone who spoke earlier in the window, so the whole-window embedding names the earlier voice. Each
local speaker also has an embedding of the window's last second; ``tail_moves`` hands that second to another
speaker whose centroid it matches ``tail_margin`` better than its own (one that no other local speaker of the
window holds; an enrolled one only past ``identify_threshold``). Centroids still move with whole windows only.

Differences from diart: enrolled speakers are pre-seeded centroids with fixed names that only accept a local
speaker whose similarity reaches ``identify_threshold`` (so unknown voices never get a name) and are matched
before the anonymous ones (a name wins once the voice is recognised), and labels are
fixed at creation, so a restored state (``load_state_dict``) keeps every label.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from stream.errors import ConfigError

_INVALID = 1e6  # cost of a forbidden pairing in the assignment problem
TAIL_BEFORE_S = 0.5  # s of a local speaker's speech before its tail for the tail to be judged: with less, the
#   whole-window embedding is the tail's
RECLUSTER_FROM = 100  # remembered embeddings before the first re-clustering: clusters of a few dozen windows are
#   too noisy to overrule the online assignment (on the 30 s AMI clips re-clustering earlier cost 3 points of DER)


@dataclass(frozen=True)
class ClusteringConfig:
    """Knobs of the online clustering; defaults chosen on the simulated tune meetings and the AMI clips
    (bench/RESULTS.md, "Diarisation: speaker count")."""

    tau_active: float = 0.5  # [0, 1] a local speaker is active in a window if its max probability >= tau_active
    rho_update: float = 0.05  # [0, 1] min mean activity over the window for its embedding to move a centroid
    delta_new: float = 0.7  # [0, 2] cosine distance above which a local speaker opens a new global speaker
    rho_new: float = 0.2  # [0, 1] min mean activity over the window for a local speaker to open a new speaker;
    #   below it, a voice far from every centroid joins the closest one (see the module docstring)
    young: float = 4.0  # >= 0 centroid norm (about the windows of speech behind it) below which an anonymous
    #   speaker accepts any voice: its centroid is still too noisy to say a voice is not its own
    tail_margin: float = 0.1  # [0, 2] similarity by which a local speaker's tail must prefer another speaker
    tail_speech: float = 0.3  # s >= 0 of the local speaker's speech in the tail for the tail to be judged
    recluster_every: int = 0  # >= 0 windows between re-clusterings of the embeddings seen so far (0 = never):
    #   the anonymous centroids are replaced by the clusters found (labels kept by majority), so speakers opened
    #   twice merge and voices merged early split for the windows still to come
    history: int = 500  # >= 2 embeddings kept for re-clustering (halved by even decimation when full: bounded)
    max_speakers: int = 20  # >= 1, most global speakers (enrolled ones included)
    identify_threshold: float = 0.45  # [-1, 1] min cosine similarity to give a local speaker an enrolled name
    #   (set on the LibriSpeech conversation of tests/diarization: unknown voices scored <= 0.37 there)

    def __post_init__(self) -> None:
        checks = {
            "tau_active": 0 <= self.tau_active <= 1,
            "rho_update": 0 <= self.rho_update <= 1,
            "delta_new": 0 <= self.delta_new <= 2,
            "rho_new": 0 <= self.rho_new <= 1,
            "young": self.young >= 0,
            "tail_margin": 0 <= self.tail_margin <= 2,
            "tail_speech": self.tail_speech >= 0,
            "max_speakers": self.max_speakers >= 1,
            "recluster_every": self.recluster_every >= 0,
            "history": self.history >= 2,
            "identify_threshold": -1 <= self.identify_threshold <= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(f"ClusteringConfig: out of range: {', '.join(f'{b}={getattr(self, b)}' for b in bad)}")


def unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[n, d] x [m, d] -> [n, m] cosine distances in [0, 2]."""
    return 1.0 - unit(a) @ unit(b).T


def constrained_assignment(distance: np.ndarray, allowed: np.ndarray) -> dict[int, int]:
    """One-to-one rows -> columns minimising total distance over allowed pairs only (Hungarian method)."""
    if distance.size == 0:
        return {}
    cost = np.where(allowed, distance, _INVALID)
    rows, cols = linear_sum_assignment(cost)
    return {int(r): int(c) for r, c in zip(rows, cols) if allowed[r, c]}


class OnlineClustering:
    """Stateful block: ``__call__(activity[frames, local], embeddings[local, dim]) -> {local: global}``.

    ``enrolled`` (name -> unit embedding) seeds named centroids. Labels are ``names`` for enrolled speakers and
    ``SPEAKER_k`` (k = 0, 1, ... in order of appearance) for the others.
    """

    def __init__(self, config: ClusteringConfig, enrolled: dict[str, np.ndarray] | None = None,
                 recluster: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        """``recluster``: unit embeddings [n, dim] -> cluster index [n], used every ``recluster_every`` windows
        (None: no re-clustering)."""
        if enrolled and len(enrolled) > config.max_speakers:
            raise ConfigError(f"{len(enrolled)} enrolled speakers but max_speakers={config.max_speakers}; raise it")
        self.config = config
        self.recluster = recluster
        self.enrolled = {name: unit(np.asarray(e, np.float64)) for name, e in (enrolled or {}).items()}
        self.reset()

    def reset(self) -> None:
        """Forget every anonymous speaker; enrolled ones come back as seeded."""
        names = list(self.enrolled)
        self.centroids: np.ndarray | None = np.stack([self.enrolled[n] for n in names]) if names else None
        self.labels: list[str] = names
        self.named: list[bool] = [True] * len(names)
        self.alive: list[bool] = [True] * len(names)  # False for a speaker merged into another
        self.anonymous = 0  # anonymous speakers created so far: the next one is SPEAKER_{anonymous}
        self.previous: dict[int, int] = {}  # the previous window's local -> global mapping
        self.seen = np.zeros((0, 0))  # [n, dim] unit embeddings of anonymous speakers, for re-clustering
        self.seen_labels = np.zeros(0, int)  # [n] their global speaker
        self.windows = 0  # embedded windows so far

    @property
    def num_speakers(self) -> int:
        return len(self.labels)

    def __call__(self, activity: np.ndarray, embeddings: np.ndarray | None,
                 continues: dict[int, int] | None = None) -> dict[int, int]:
        """Global speaker index of each active local speaker of one window.

        activity: [frames, local] probabilities in [0, 1]; embeddings: [local, dim] (rows of inactive speakers are
        ignored and may be NaN), or None for a window stitched to the previous one, whose local speakers then
        inherit the labels of those they continue (``continues``: local -> previous window's local).
        """
        if embeddings is None:
            mapping = {s: self.previous[p] for s, p in (continues or {}).items() if p in self.previous}
        else:
            mapping = self._assign(activity, embeddings)
        self.previous = mapping
        return mapping

    def _assign(self, activity: np.ndarray, embeddings: np.ndarray) -> dict[int, int]:
        cfg = self.config
        active = np.flatnonzero(activity.max(axis=0) >= cfg.tau_active)
        active = active[np.all(np.isfinite(embeddings[active]), axis=1)]
        if active.size == 0:
            return {}
        emb = unit(embeddings[active].astype(np.float64))
        speech = activity[:, active].mean(axis=0)
        long = speech >= cfg.rho_update
        mapping: dict[int, int] = {}
        if self.centroids is not None:
            # enrolled speakers first (a name wins over an anonymous label made from the same voice earlier),
            # then the anonymous ones with what is left
            dist = cosine_distance(emb, self.centroids)
            named, alive = np.asarray(self.named), np.asarray(self.alive)
            young = np.linalg.norm(self.centroids, axis=1) < cfg.young
            for allowed in (named[None, :] & (dist <= 1.0 - cfg.identify_threshold),
                            (~named & alive)[None, :] & ((dist <= cfg.delta_new) | young[None, :])):
                allowed = allowed.copy()
                allowed[[i for i, a in enumerate(active) if a in mapping]] = False
                allowed[:, list(mapping.values())] = False
                for row, col in constrained_assignment(dist, allowed).items():
                    mapping[int(active[row])] = col
                    if long[row] and not named[col]:  # enrolled voices stay as enrolled: no drift
                        self.centroids[col] += emb[row]
        for row in np.flatnonzero([a not in mapping for a in active]):
            taken = set(mapping.values())
            closest = self._closest(emb[row], taken) if speech[row] < cfg.rho_new else -1
            mapping[int(active[row])] = closest if closest >= 0 else self._new_or_closest(emb[row], taken)
        mapping = {k: v for k, v in mapping.items() if v >= 0}
        if cfg.recluster_every and self.recluster is not None:
            self._remember(emb, active, long, mapping)
        return mapping

    def tail_moves(self, activity: np.ndarray, tails: np.ndarray, mapping: dict[int, int], tail_frames: int,
                   resolution: float) -> dict[int, int]:
        """Local speakers whose tail (the last ``tail_frames`` of ``activity``) sounds like another speaker than
        the one ``mapping`` gave them: local -> that speaker. ``tails``: [local, dim] tail embeddings (NaN rows for
        speakers silent there)."""
        cfg = self.config
        moves: dict[int, int] = {}
        if self.centroids is None:
            return moves
        for local, k in mapping.items():
            speech = activity[:, local] * resolution
            if (not np.all(np.isfinite(tails[local])) or speech[-tail_frames:].sum() < cfg.tail_speech
                    or speech[:-tail_frames].sum() < TAIL_BEFORE_S):
                continue
            held = {g for other, g in mapping.items() if other != local}
            free = [g for g in range(self.num_speakers) if g != k and self.alive[g] and g not in held]
            if not free:
                continue
            similarity = 1.0 - cosine_distance(tails[local][None].astype(np.float64), self.centroids)[0]
            best = max(free, key=lambda g: similarity[g])
            if similarity[best] - similarity[k] > cfg.tail_margin and (
                    not self.named[best] or similarity[best] >= cfg.identify_threshold):
                moves[local] = best
        return moves

    def _remember(self, emb: np.ndarray, active: np.ndarray, long: np.ndarray, mapping: dict[int, int]) -> None:
        """Keep the embeddings that moved an anonymous centroid; every ``recluster_every`` windows, re-cluster."""
        rows = [r for r, a in enumerate(active) if long[r] and a in mapping and not self.named[mapping[a]]]
        if rows:
            self.seen = emb[rows] if not len(self.seen) else np.vstack([self.seen, emb[rows]])
            self.seen_labels = np.concatenate([self.seen_labels, [mapping[active[r]] for r in rows]])
            if len(self.seen) > self.config.history:
                self.seen, self.seen_labels = self.seen[::2], self.seen_labels[::2]
        self.windows += 1
        if self.windows % self.config.recluster_every == 0 and len(self.seen) >= RECLUSTER_FROM:
            self._adopt(self.recluster(self.seen))

    def _adopt(self, clusters: np.ndarray) -> None:
        """Replace anonymous centroids by ``clusters`` of the remembered embeddings.

        Each cluster keeps the label of the speaker most of its members had (one-to-one); a cluster without one
        becomes a new speaker; a speaker whose members all went to clusters labelled otherwise is merged away.
        """
        shared = np.zeros((clusters.max() + 1, self.num_speakers))
        np.add.at(shared, (clusters, self.seen_labels), 1.0)
        owner = constrained_assignment(-shared, shared > 0)
        members = set(self.seen_labels.tolist())
        for k in range(len(shared)):
            centroid = self.seen[clusters == k].sum(axis=0)
            if k in owner:
                self.centroids[owner[k]] = centroid
            elif self.num_speakers < self.config.max_speakers:
                owner[k] = self._new_or_closest(centroid, set())
        for g in members - set(owner.values()):
            self.alive[g] = False
            self.centroids[g] = 0.0
        self.seen_labels = np.array([owner.get(int(k), -1) for k in clusters])
        keep = self.seen_labels >= 0
        self.seen, self.seen_labels = self.seen[keep], self.seen_labels[keep]

    def _new_or_closest(self, emb: np.ndarray, taken: set[int]) -> int:
        """A new anonymous speaker, or past max_speakers the closest anonymous one not taken (-1 if none)."""
        if self.num_speakers < self.config.max_speakers:
            self.centroids = emb[None].copy() if self.centroids is None else np.vstack([self.centroids, emb])
            self.labels.append(f"SPEAKER_{self.anonymous}")
            self.named.append(False)
            self.alive.append(True)
            self.anonymous += 1
            return self.num_speakers - 1
        return self._closest(emb, taken)

    def _closest(self, emb: np.ndarray, taken: set[int]) -> int:
        """The closest anonymous speaker not ``taken`` (-1 if none)."""
        free = [k for k in range(self.num_speakers) if k not in taken and not self.named[k] and self.alive[k]]
        if not free:
            return -1
        return free[int(np.argmin(cosine_distance(emb[None], self.centroids[free])[0]))]

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue with the same labels after a restart (arrays and plain lists)."""
        dim = next(iter(self.enrolled.values())).shape[-1] if self.enrolled else 0
        centroids = self.centroids if self.centroids is not None else np.zeros((0, dim))
        return {"centroids": centroids.copy(), "labels": list(self.labels), "named": list(self.named),
                "alive": list(self.alive), "seen": self.seen.astype(np.float32),
                "seen_labels": self.seen_labels.copy(), "windows": self.windows,
                "anonymous": self.anonymous, "previous": {int(k): int(v) for k, v in self.previous.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        centroids = np.asarray(state["centroids"], np.float64)
        self.centroids = centroids.copy() if len(centroids) else None
        self.labels = [str(x) for x in state["labels"]]
        self.named = [bool(x) for x in state["named"]]
        self.alive = [bool(x) for x in state["alive"]]
        self.seen = np.asarray(state["seen"], np.float64)
        self.seen_labels = np.asarray(state["seen_labels"], int)
        self.windows = int(state["windows"])
        self.anonymous = int(state["anonymous"])
        self.previous = {int(k): int(v) for k, v in state["previous"].items()}
