"""The on-disk fingerprint index and the matcher that votes query hashes into (track, speed, offset).

A folder: `tracks.json` (names and durations) and `hashes.npz` (every indexed hash sorted, with its track, anchor
frame, anchor log frequency and dt13). Lookup is a binary search per probe key, so a query of a few thousand
hashes costs milliseconds for hundreds of tracks.

Matching: each hit (query hash, indexed hash) implies a speed (from the anchors' log frequencies: query u1 minus
track u1, in 24ths of an octave) and a time offset b = t_track - speed * t_query. Hits whose dt13 ratio disagrees
with that speed are dropped. Hits are counted per (track, coarse speed, coarse offset); for the best few cells the
speed and offset are re-estimated as medians and the hits within `OFFSET_TOL` frames are counted: that count is
the match's score. A match is declared when the score reaches `min_hits` and beats the best other track's by
`margin` times.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nodes.fingerprint.hashes import FRAME_S, STEPS_PER_OCTAVE, Hashes, probe
from stream.errors import ConfigError

SPEED_CELL = 2.0  # steps of u (1/24 octave): coarse speed cells of the vote (~6 %)
OFFSET_CELL = 16  # frames (0.26 s): coarse offset cells of the vote
OFFSET_TOL = 3  # frames: a hit agrees with a match when its offset is this close
DT_TOL = 0.12  # octaves: a hit's dt13 ratio may disagree with its speed by this much (peak timing is +-1 frame)
CANDIDATES = 5  # vote cells refined


@dataclass(frozen=True)
class Match:
    track: str
    speed: float  # query speed relative to the track (1.05 = played 5 % fast)
    offset: float  # s into the track at query time 0 (track time = offset + speed * query time)
    score: int  # agreeing hits
    runner_up: int  # best score of any other track

    @property
    def confidence(self) -> float:
        """[0, 1): how far the score stands above the best other track's."""
        return round(1.0 - (self.runner_up + 1) / (self.score + 1), 3)


@dataclass(frozen=True)
class Hits:
    """Index hits of query hashes: the track, the anchors' log-frequency difference and both anchor frames."""

    track: np.ndarray  # int32 [n]
    du: np.ndarray  # float32 [n]: query u1 - track u1 (24ths of an octave)
    query_t1: np.ndarray  # int32 [n] frames of the query
    track_t1: np.ndarray  # int32 [n] frames of the track

    @staticmethod
    def empty() -> Hits:
        return Hits(np.zeros(0, np.int32), np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros(0, np.int32))

    @staticmethod
    def concat(parts: list[Hits]) -> Hits:
        return Hits(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("track", "du", "query_t1", "track_t1")))

    def since(self, frame: int) -> Hits:
        keep = self.query_t1 >= frame
        return Hits(self.track[keep], self.du[keep], self.query_t1[keep], self.track_t1[keep])


class FingerprintIndex:
    def __init__(self, names: list[str], durations: list[float], hashes: Hashes, tracks: np.ndarray) -> None:
        order = np.argsort(hashes.hash, kind="stable")
        self.names, self.durations = names, durations
        self.hash = hashes.hash[order]
        self.track = tracks[order].astype(np.int32)
        self.t1 = hashes.t1[order]
        self.u1 = hashes.u1[order]
        self.dt13 = hashes.dt13[order]

    @staticmethod
    def empty() -> FingerprintIndex:
        return FingerprintIndex([], [], Hashes.empty(), np.zeros(0, np.int32))

    @staticmethod
    def load(folder: Path) -> FingerprintIndex:
        if not (folder / "tracks.json").is_file() or not (folder / "hashes.npz").is_file():
            raise ConfigError(f"no fingerprint index in {folder}: create one with `stream fingerprint add AUDIO... "
                              f"--index {folder}`")
        meta = json.loads((folder / "tracks.json").read_text())
        with np.load(folder / "hashes.npz") as z:
            hashes = Hashes(z["hash"], z["t1"], z["u1"], z["dt13"], np.zeros((len(z["hash"]), 0), np.float32))
            return FingerprintIndex(meta["names"], meta["durations"], hashes, z["track"])

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / "hashes.npz", hash=self.hash, track=self.track, t1=self.t1, u1=self.u1, dt13=self.dt13)
        (folder / "tracks.json").write_text(json.dumps({"names": self.names, "durations": self.durations}))

    def add(self, tracks: list[tuple[str, float, Hashes]]) -> FingerprintIndex:
        """A new index with `tracks` (name, duration s, hashes) added; a name already indexed is replaced."""
        names, durations = list(self.names), list(self.durations)
        replaced = [names.index(name) for name, _, _ in tracks if name in names]
        keep = ~np.isin(self.track, replaced)
        parts = [Hashes(self.hash[keep], self.t1[keep], self.u1[keep], self.dt13[keep], np.zeros((keep.sum(), 0)))]
        numbers = [self.track[keep]]
        for name, duration, hashes in tracks:
            if name in names:
                number = names.index(name)
                durations[number] = duration
            else:
                number = len(names)
                names.append(name)
                durations.append(duration)
            parts.append(Hashes(hashes.hash, hashes.t1, hashes.u1, hashes.dt13, np.zeros((len(hashes.hash), 0))))
            numbers.append(np.full(len(hashes.hash), number, np.int32))
        return FingerprintIndex(names, durations, Hashes.concat(parts), np.concatenate(numbers))

    def lookup(self, query: Hashes) -> Hits:
        """Every (query hash, indexed hash) pair sharing a probe key whose dt13 ratio agrees with its speed."""
        if len(query.hash) == 0 or len(self.hash) == 0:
            return Hits.empty()
        keys, owner = probe(query.values)
        lo, hi = np.searchsorted(self.hash, keys, "left"), np.searchsorted(self.hash, keys, "right")
        counts = hi - lo
        q = np.repeat(owner, counts)
        r = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
        du = query.u1[q] - self.u1[r]
        ok = np.abs(np.log2(query.dt13[q] / self.dt13[r]) + du / STEPS_PER_OCTAVE) <= DT_TOL
        q, r = q[ok], r[ok]
        return Hits(self.track[r], du[ok].astype(np.float32), query.t1[q], self.t1[r])

    def match(self, query: Hashes, min_hits: int, margin: float) -> Match | None:
        """The best match of `query` (t1 in query frames), or None when it is not clear enough."""
        return self.vote(self.lookup(query), min_hits, margin)

    def vote(self, hits: Hits, min_hits: int, margin: float) -> Match | None:
        """The (track, speed, offset) most hits agree on, or None when it is not clear enough (module docstring)."""
        if len(hits.track) < min_hits:
            return None
        octaves = hits.du / STEPS_PER_OCTAVE
        offset = hits.track_t1 - np.exp2(octaves) * hits.query_t1
        speed_cell = np.round(hits.du / SPEED_CELL).astype(np.int64)
        offset_cell = np.round(offset / OFFSET_CELL).astype(np.int64)
        cells = (hits.track.astype(np.int64) << 40) + ((speed_cell + 128) << 32) + (offset_cell + (1 << 31))
        uniq, votes = np.unique(cells, return_counts=True)
        best: dict[int, tuple[int, float, float]] = {}  # track -> (score, speed, offset frames)
        for c in np.argsort(-votes)[:CANDIDATES]:
            track = int(uniq[c] >> 40)
            near = (hits.track == track) & (np.abs(speed_cell - (((uniq[c] >> 32) & 0xFF) - 128)) <= 1) \
                & (np.abs(offset_cell - ((uniq[c] & 0xFFFFFFFF) - (1 << 31))) <= 1)
            speed = float(np.exp2(np.median(octaves[near])))
            b = hits.track_t1[near] - speed * hits.query_t1[near]
            b0 = float(np.median(b))
            score = int(np.sum(np.abs(b - b0) <= OFFSET_TOL))
            if score > best.get(track, (-1, 0.0, 0.0))[0]:
                best[track] = (score, speed, b0)
        ranked = sorted(best.items(), key=lambda kv: -kv[1][0])
        track, (score, speed, b0) = ranked[0]
        runner_up = ranked[1][1][0] if len(ranked) > 1 else 0
        if score < min_hits or score < margin * runner_up:
            return None
        return Match(self.names[track], round(speed, 4), round(b0 * FRAME_S, 3), score, runner_up)
