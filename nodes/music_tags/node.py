"""Music tags node: 16 kHz pcm -> a "music.tags" event every `every_s` (genre and mood from YAMNet).

Per stream: streaming log-mel (YAMNet's front end) -> a 0.96 s patch every `hop` -> YAMNet scores; every
`every_s` seconds of audio the patches of that span become one event (`tags.music_tags`): the music score, the
top genre and mood (or "none" when the span is not music) and the `top_k` of each. Events are stamped with the
capture time of the span's end, so the latency histogram shows the model's delay, not the span.

    [[nodes]]
    name = "music_tags"
    kind = "music_tags"
    inputs = ["capture"]
    config = { every_s = 5.0, min_music = 0.3 }
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nodes.music_tags.tags import MusicTags, TagIndex, music_tags
from nodes.sed.frontend import HOP, SAMPLE_RATE, StreamingLogMel
from nodes.sed.yamnet import PATCH_FRAMES
from stream.errors import ConfigError
from stream.message import Message
from stream.node import Node
from stream.pcm import mono

NONE = "none"


@dataclass(frozen=True)
class MusicTagsConfig:
    every_s: float = 5.0  # s of audio per event, >= hop
    hop: float = 0.48  # s between patches, a multiple of 0.01 in [0.01, 0.96]
    top_k: int = 3  # genres and moods listed per event, in [1, 6]
    min_music: float = 0.3  # [0, 1] mean "Music" score below which a span gets genre and mood "none"

    def __post_init__(self) -> None:
        frames = round(self.hop * SAMPLE_RATE / HOP)
        if not 1 <= frames <= PATCH_FRAMES or abs(frames * HOP / SAMPLE_RATE - self.hop) > 1e-6:
            raise ConfigError(f"music_tags hop = {self.hop!r} s: use a multiple of 0.01 s between 0.01 and 0.96")
        if self.every_s < self.hop or not 1 <= self.top_k <= 6 or not 0 <= self.min_music <= 1:
            raise ConfigError(f"music_tags: every_s >= hop, top_k in [1, 6], min_music in [0, 1]; got {self}")

    @property
    def hop_frames(self) -> int:
        return round(self.hop * SAMPLE_RATE / HOP)


@dataclass
class StreamTags:
    t0_ns: int
    t0_wall: float
    frontend: StreamingLogMel = field(default_factory=StreamingLogMel)
    frames: np.ndarray = field(default_factory=lambda: np.zeros((0, 64), np.float32))  # from the next patch on
    patches: int = 0  # patches scored so far
    scores: list[np.ndarray] = field(default_factory=list)  # scores of the current span's patches
    span_start: float = 0.0  # s


class MusicTagsNode(Node[MusicTagsConfig]):
    Config = MusicTagsConfig
    accepts = ("pcm",)

    def __init__(self, config: MusicTagsConfig | None = None, name: str | None = None) -> None:
        super().__init__(config, name)
        self.streams: dict[str, StreamTags] = {}

    async def setup(self) -> None:
        from nodes.sed.yamnet import load_yamnet
        from stream.models import use_compile_cache

        use_compile_cache()  # the sed node compiles the same model and batch buckets: a second start loads them
        self.model = load_yamnet(max_batch=8)
        self.index = TagIndex.of(self.model.class_names)
        self.model.warmup()

    async def process(self, msg: Message, port: str = "") -> list[Message]:
        h = msg.header
        samples = mono(msg, SAMPLE_RATE)
        s = self.streams.get(h.stream)
        if s is None:
            s = self.streams[h.stream] = StreamTags(h.t_capture_ns, h.t_wall)
        s.frames = np.concatenate([s.frames, s.frontend.push(samples)])
        step = self.config.hop_frames
        ready = max(0, (len(s.frames) - PATCH_FRAMES) // step + 1)
        if ready == 0:
            return []
        patches = np.stack([s.frames[i * step:i * step + PATCH_FRAMES] for i in range(ready)])
        s.frames = s.frames[ready * step:]
        scores, _ = self.model(patches)
        events = []
        for i in range(ready):
            s.scores.append(scores[i])
            s.patches += 1
            end = ((s.patches - 1) * step + PATCH_FRAMES) * HOP / SAMPLE_RATE  # s: the patch's last frame
            if end - s.span_start >= self.config.every_s - 1e-9:
                tags = music_tags(np.stack(s.scores), self.index, self.config.top_k, self.config.min_music)
                events.append(self._event(h.stream, s, tags, end))
                s.scores, s.span_start = [], end
        return events

    def _event(self, stream: str, s: StreamTags, tags: MusicTags, end: float) -> Message:
        meta: dict[str, Any] = {
            "type": "music.tags", "stream": stream, "t_audio": round(s.span_start, 3), "t_capture": s.t0_wall + end,
            "t_publish": time.time(), "node": self.name, "duration": round(end - s.span_start, 3),
            "music": round(tags.music, 4),
            "genre": tags.genres[0][0] if tags.genres else NONE, "mood": tags.moods[0][0] if tags.moods else NONE,
            "genres": [{"label": n, "score": round(v, 4)} for n, v in tags.genres],
            "moods": [{"label": n, "score": round(v, 4)} for n, v in tags.moods]}
        return Message.new(stream, "event", np.zeros(0, np.uint8), sr=0, t_capture_ns=s.t0_ns + round(end * 1e9),
                           t_wall=s.t0_wall + end, meta=meta)


NODE = MusicTagsNode
