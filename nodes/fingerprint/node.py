"""Fingerprint node: pcm of one or many streams -> "fingerprint.match" events naming the indexed track playing.

Per stream a `FingerprintExtractor` turns audio into triplet hashes as soon as they are final (~1.6 s behind);
each batch is looked up in the index once and its hits are kept for `window_s`; every `every_s` the kept hits
vote (`FingerprintIndex.vote`). A match is announced when it first appears, when the track changes, or when its
offset jumps by more than a second (a seek); `offset` is the position in the track at the event's `t_audio`.
The index is loaded once at setup (`stream fingerprint add` builds it); a missing index is a ConfigError. No
state is checkpointed: after a restart the node re-identifies the track from fresh audio within seconds.

    [[nodes]]
    name = "fingerprint"
    kind = "fingerprint"
    inputs = ["capture"]
    config = { index = "fingerprints", window_s = 8.0, min_hits = 12 }
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nodes.fingerprint.extract import FingerprintExtractor
from nodes.fingerprint.hashes import FRAME_S, Hashes
from nodes.fingerprint.index import FingerprintIndex, Hits, Match
from stream.errors import ConfigError
from stream.message import Message
from stream.node import Node
from stream.pcm import mono

SEEK_S = 1.0  # an offset jump larger than this re-announces the track


@dataclass(frozen=True)
class FingerprintConfig:
    index: str = "fingerprints"  # folder written by `stream fingerprint add`
    window_s: float = 8.0  # > 0 s: hits older than this are forgotten
    every_s: float = 0.5  # > 0 s: how often the kept hits vote
    min_hits: int = 12  # >= 2: agreeing hashes a match needs
    margin: float = 3.0  # >= 1: the best track's score over the best other track's (both tuned on the tune half
    #   of bench/fingerprint.py's set: 8 / 2.0 named a wrong track in 17 of 38 unindexed real files, 12 / 3.0 in none)

    def __post_init__(self) -> None:
        if self.window_s <= 0 or self.every_s <= 0:
            raise ConfigError(f"window_s and every_s must be > 0 s, got {self.window_s}, {self.every_s}")
        if self.min_hits < 2 or self.margin < 1:
            raise ConfigError(f"min_hits must be >= 2 and margin >= 1, got {self.min_hits}, {self.margin}")


@dataclass
class StreamState:
    extractor: FingerprintExtractor
    rate: int
    t0_ns: int
    t0_wall: float
    hits: Hits
    samples: int = 0  # samples received
    voted_at: float = 0.0  # s of audio at the last vote
    announced: Match | None = None
    announced_at: float = 0.0  # s of audio when `announced` was announced


class FingerprintNode(Node[FingerprintConfig]):
    Config = FingerprintConfig
    accepts = ("pcm",)

    def __init__(self, config: FingerprintConfig | None = None, name: str | None = None,
                 index: FingerprintIndex | None = None) -> None:
        super().__init__(config, name)
        self.index = index  # loaded in setup() unless given (file mode shares one)
        self.streams: dict[str, StreamState] = {}

    async def setup(self) -> None:
        if self.index is None:
            self.index = FingerprintIndex.load(Path(self.config.index))

    async def process(self, msg: Message, port: str = "") -> list[Message]:
        h = msg.header
        samples = mono(msg)
        s = self.streams.get(h.stream)
        if s is None:
            s = self.streams[h.stream] = StreamState(FingerprintExtractor(h.sr), h.sr, h.t_capture_ns, h.t_wall,
                                                     Hits.empty())
        s.samples += len(samples)
        return self._step(h.stream, s, s.extractor.push(samples))

    async def close(self) -> list[Message]:
        return [e for name, s in self.streams.items() for e in self._step(name, s, s.extractor.flush(), last=True)]

    def _step(self, stream: str, s: StreamState, hashes: Hashes, last: bool = False) -> list[Message]:
        now = s.samples / s.rate
        found = self.index.lookup(hashes)
        if len(found.track):
            s.hits = Hits.concat([s.hits, found])
        if now - s.voted_at < self.config.every_s and not last:
            return []
        s.voted_at = now
        s.hits = s.hits.since(round((now - self.config.window_s) / FRAME_S))  # here, not per block: the same hits
        match = self.index.vote(s.hits, self.config.min_hits, self.config.margin)
        if match is None or not self._is_news(s, match, now):
            return []
        s.announced, s.announced_at = match, now
        return [self._event(stream, s, match, now)]

    @staticmethod
    def _is_news(s: StreamState, match: Match, now: float) -> bool:
        old = s.announced
        if old is None or old.track != match.track:
            return True
        expected = old.offset + old.speed * now
        return abs(match.offset + match.speed * now - expected) > SEEK_S

    def _event(self, stream: str, s: StreamState, match: Match, now: float) -> Message:
        meta = {"type": "fingerprint.match", "stream": stream, "t_audio": now, "t_capture": s.t0_wall + now,
                "t_publish": time.time(), "node": self.name, "track": match.track,
                "offset": round(match.offset + match.speed * now, 3), "speed": match.speed,
                "confidence": match.confidence, "score": match.score}
        return Message.new(stream, "event", np.zeros(0, np.uint8), sr=0, t_capture_ns=s.t0_ns + round(now * 1e9),
                           t_wall=s.t0_wall + now, meta=meta)


NODE = FingerprintNode
