"""Chords node: pcm of one or many streams -> "chord.changed" events (24 major/minor triads + N).

Per stream a `ChordTracker` (streaming chroma with tuning estimation, template scores, fixed-lag Viterbi). A chord
is announced `lag` frames (~0.09 s each) plus 0.19 s of analysis window after it started; the event's header
`t_capture_ns` is the capture time of the chord's start, so the sinks' latency histogram shows that delay.
Any input rate works (the tracker resamples to 11.025 kHz); stereo is down-mixed.

    [[nodes]]
    name = "chords"
    kind = "chords"
    inputs = ["capture"]
    config = { lag = 10, switch_prob = 0.05 }
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from nodes.chords.chroma import FRAME_RATE, ChromaConfig
from nodes.chords.recognize import ChordConfig
from nodes.chords.tracker import ChordChange, ChordTracker
from stream.audioclock import AudioClock
from stream.errors import MessageError
from stream.message import Message
from stream.node import Node
from stream.pcm import mono

FRAME_S = 1.0 / FRAME_RATE  # s between chroma frames: a gap is widened to whole frames (stream.audioclock)

_CHROMA, _CHORDS = ChromaConfig(), ChordConfig()


@dataclass(frozen=True)
class ChordsNodeConfig:
    lag: int = _CHORDS.lag  # frames >= 0 of decision delay (10.8 frames per second)
    switch_prob: float = _CHORDS.switch_prob  # (0, 1): per-frame prior probability of a chord change
    sharpness: float = _CHORDS.sharpness  # > 0: how much one frame's chroma is trusted over the prior
    bass_weight: float = _CHORDS.bass_weight  # >= 0: weight of the bass note at the chord's root
    no_chord_score: float = _CHORDS.no_chord_score  # template cosine below which a frame is N
    tuning_memory_s: float = _CHROMA.tuning_memory_s  # > 0 s: time constant of the tuning estimate

    def __post_init__(self) -> None:
        self.chords  # noqa: B018 - ChordConfig validates the ranges (ConfigError)

    @property
    def chords(self) -> ChordConfig:
        return ChordConfig(bass_weight=self.bass_weight, no_chord_score=self.no_chord_score,
                           sharpness=self.sharpness, switch_prob=self.switch_prob, lag=self.lag)

    @property
    def chroma(self) -> ChromaConfig:
        return ChromaConfig(tuning_memory_s=self.tuning_memory_s)


@dataclass
class StreamChords:
    tracker: ChordTracker
    clock: AudioClock  # the stream's time across lost audio (its t0_ns: capture time of the first sample)
    t0_wall: float  # capture time of the first sample, Unix s
    label: str = "N"  # chord announced last

    @property
    def rate(self) -> int:
        return self.clock.rate


class ChordsNode(Node[ChordsNodeConfig]):
    Config = ChordsNodeConfig
    accepts = ("pcm",)

    def __init__(self, config: ChordsNodeConfig | None = None, name: str | None = None) -> None:
        super().__init__(config, name)
        self.streams: dict[str, StreamChords] = {}

    async def process(self, msg: Message, port: str = "") -> list[Message]:
        h = msg.header
        samples = mono(msg)  # MessageError for unusable pcm (stream.pcm), before any state exists
        s = self.streams.get(h.stream)
        if s is None:
            s = self.streams[h.stream] = StreamChords(ChordTracker(h.sr, self.config.chroma, self.config.chords),
                                                      AudioClock(h.t_capture_ns, h.sr, grid_s=FRAME_S), h.t_wall)
        elif h.sr != s.rate:
            raise MessageError("input", f"stream {h.stream!r} changed rate from {s.rate} to {h.sr} Hz mid-stream")
        return [self._event(h.stream, c) for c in s.tracker.push(s.clock.place(samples, h.t_capture_ns))]

    async def close(self) -> list[Message]:
        return [self._event(name, c) for name, s in self.streams.items() for c in s.tracker.flush()]

    def _event(self, stream: str, change: ChordChange) -> Message:
        s = self.streams[stream]
        t = s.clock.to_stream(change.time)
        meta = {"type": "chord.changed", "stream": stream, "t_audio": t,
                "t_capture": s.t0_wall + t, "t_publish": time.time(), "node": self.name,
                "chord": change.label, "previous": s.label, "confidence": change.confidence}
        s.label = change.label
        return Message.new(stream, "event", np.zeros(0, np.uint8), sr=0,
                           t_capture_ns=s.clock.t0_ns + round(t * 1e9), t_wall=s.t0_wall + t, meta=meta)

    def state_dict(self) -> dict[str, Any]:
        return {name: {"tracker": s.tracker.state_dict(), "clock": s.clock.state_dict(), "t0_wall": s.t0_wall,
                       "label": s.label} for name, s in self.streams.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, saved in state.items():
            clock = AudioClock.from_state(saved["clock"], FRAME_S)
            tracker = ChordTracker(clock.rate, self.config.chroma, self.config.chords)
            tracker.load_state_dict(saved["tracker"])
            self.streams[name] = StreamChords(tracker, clock, float(saved["t0_wall"]), str(saved["label"]))


NODE = ChordsNode
