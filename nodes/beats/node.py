"""Beats node: pcm of one or many streams -> "beat" events (predicted just before each beat) and "tempo.changed".

Per stream a `BeatTracker` (onset strength or BeatNet's CRNN, then the causal decoder). A beat event's header
`t_capture_ns` is the capture time of the beat itself, so the sinks' latency histogram measures how long after
the beat it was announced (negative for a beat announced before it sounded: `predicted` is then true).

    [[nodes]]
    name = "beats"
    kind = "beats"
    inputs = ["capture"]
    config = { mode = "dp" }            # or "crnn" (BeatNet, needs ../shared/models/beatnet/), "crnn-tuned"
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from nodes.beats.tracker import MODES, Beat, BeatTracker, TempoChange, TrackerConfig
from stream.audioclock import REALIGN_S
from stream.errors import ConfigError
from stream.message import Message
from stream.node import Node
from stream.pcm import mono


@dataclass(frozen=True)
class BeatsNodeConfig:
    mode: str = "dp"  # "dp" (onset strength), "crnn" (BeatNet CRNN) or "crnn-tuned" (fine-tuned weights)
    model: int = 1  # crnn: BeatNet model 1, 2 or 3
    tempo_change: float = 0.04  # relative change (0.01-0.5) that announces a new tempo

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"beats mode must be one of {MODES}, got {self.mode!r}")
        if not 0.01 <= self.tempo_change <= 0.5:
            raise ConfigError(f"beats tempo_change must be in [0.01, 0.5], got {self.tempo_change}")

    @property
    def tracker(self) -> TrackerConfig:
        return TrackerConfig(mode=self.mode, model=self.model, tempo_change=self.tempo_change)


@dataclass
class StreamBeats:
    tracker: BeatTracker
    t0_ns: int  # capture time of the stream's first sample (monotonic ns)
    t0_wall: float  # the same, Unix s
    samples: int = 0  # stream samples (at the stream's rate) up to the end of the last block pushed

    def place(self, samples: np.ndarray, t_capture_ns: int, rate: int) -> np.ndarray:
        """The samples of a block stamped `t_capture_ns` to push: after a gap (a drop, a restart) the tracker goes
        on at the block's stream time; audio heard twice (a source resumed from its checkpoint) is cut. Offsets
        under `REALIGN_S` (a device clock's jitter) are left alone."""
        at = round((t_capture_ns - self.t0_ns) * rate / 1e9)
        off = at - self.samples
        if off > REALIGN_S * rate:
            self.tracker.resume(at / rate)
            self.samples = at
        elif off < -REALIGN_S * rate:
            samples = samples[min(-off, len(samples)):]
        self.samples += len(samples)
        return samples


class BeatsNode(Node[BeatsNodeConfig]):
    Config = BeatsNodeConfig
    accepts = ("pcm",)

    def __init__(self, config: BeatsNodeConfig | None = None, name: str | None = None) -> None:
        super().__init__(config, name)
        self.streams: dict[str, StreamBeats] = {}
        self.params = None
        self._restored: dict[str, Any] = {}

    async def setup(self) -> None:
        if self.config.mode != "dp":
            from nodes.beats.beatnet import BeatNetFrontEnd, weights
            from stream.models import use_compile_cache

            use_compile_cache()
            self.params = weights(self.config.mode, self.config.model)
            BeatNetFrontEnd(self.params).warm_up()

    def _stream(self, msg: Message) -> StreamBeats:
        h = msg.header
        s = self.streams.get(h.stream)
        if s is None or s.tracker.rate != h.sr:  # a new stream, or its rate changed: start over
            saved = self._restored.pop(h.stream, None)
            t0_ns, t0_wall = (saved["t0_ns"], saved["t0_wall"]) if saved else (h.t_capture_ns, h.t_wall)
            s = self.streams[h.stream] = StreamBeats(BeatTracker(self.config.tracker, h.sr, self.params), t0_ns, t0_wall)
            if saved:  # after a restart: the tracker's posterior comes back and goes on at this block's time
                if (saved.get("rate"), saved.get("mode")) == (h.sr, self.config.mode):  # else: another config's,
                    s.tracker.load_state_dict(saved["tracker"])  # or an older node's checkpoint: times only
                s.samples = max(0, round((h.t_capture_ns - t0_ns) * h.sr / 1e9))
                s.tracker.resume(s.samples / h.sr)
        return s

    async def process(self, msg: Message, port: str = "") -> list[Message]:
        h = msg.header
        samples = mono(msg)  # MessageError for unusable pcm (stream.pcm), before any state exists
        s = self._stream(msg)
        beats, tempi = s.tracker.push(s.place(samples, h.t_capture_ns, h.sr))
        return [self._beat(h.stream, b) for b in beats] + [self._tempo(h.stream, t) for t in tempi]

    def _message(self, stream: str, time_s: float, meta: dict[str, Any]) -> Message:
        s = self.streams[stream]
        meta = {"stream": stream, "t_audio": round(time_s, 4), "t_capture": s.t0_wall + time_s,
                "t_publish": time.time(), "node": self.name, **meta}
        return Message.new(stream, "event", np.zeros(0, np.uint8), sr=0, t_capture_ns=s.t0_ns + round(time_s * 1e9),
                           t_wall=s.t0_wall + time_s, meta=meta)

    def _beat(self, stream: str, b: Beat) -> Message:
        meta: dict[str, Any] = {"type": "beat", "predicted": b.predicted, "strength": b.strength, "tempo": b.tempo}
        if b.position:
            meta["position"] = b.position
        return self._message(stream, b.time, meta)

    def _tempo(self, stream: str, t: TempoChange) -> Message:
        return self._message(stream, t.time, {"type": "tempo.changed", "bpm": t.bpm, "confidence": t.confidence})

    def state_dict(self) -> dict[str, Any]:
        return {name: {"t0_ns": s.t0_ns, "t0_wall": s.t0_wall, "rate": s.tracker.rate, "mode": self.config.mode,
                       "tracker": s.tracker.state_dict()}
                for name, s in self.streams.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._restored = dict(state)


NODE = BeatsNode
