"""VAD node: pcm of one or many streams -> "vad" events when speech starts and ends (Silero VAD, hysteresis).

Per stream a `VoiceActivityDetector` (model state and decision carried across blocks, checkpointed). Event
header `t_capture_ns` = capture time of the audio at the event's time, so the sinks' latency histogram measures
how long after speech started or ended it was announced (the hysteresis adds `min_speech` / `min_silence`).

    [[nodes]]
    name = "vad"
    kind = "vad"
    inputs = ["capture"]
    config = { onset = 0.5, offset = 0.35, min_speech = 0.25, min_silence = 0.1 }
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from nodes.segmentation.node import mono_pcm
from nodes.vad.detector import SAMPLE_RATE, SpeechEvent, VadConfig, VoiceActivityDetector
from stream.audioclock import REALIGN_S
from stream.message import Message
from stream.models import use_compile_cache
from stream.node import Node

_DEFAULTS = VadConfig()


@dataclass(frozen=True)
class VadNodeConfig:
    onset: float = _DEFAULTS.onset  # [0, 1] probability that opens speech
    offset: float = _DEFAULTS.offset  # [0, onset] probability below which speech may close
    min_speech: float = _DEFAULTS.min_speech  # s >= 0; shorter regions are never announced
    min_silence: float = _DEFAULTS.min_silence  # s >= 0; shorter pauses are bridged

    def __post_init__(self) -> None:
        self.vad  # noqa: B018 - VadConfig validates the ranges (ConfigError)

    @property
    def vad(self) -> VadConfig:
        return VadConfig(self.onset, self.offset, self.min_speech, self.min_silence)


@dataclass
class StreamVad:
    detector: VoiceActivityDetector
    t0_ns: int  # capture time of the stream's first sample (monotonic ns)
    t0_wall: float  # the same, Unix s
    samples: int = 0  # stream time of the next sample: samples pushed plus gaps skipped

    def on_time(self, samples: np.ndarray, t_capture_ns: int) -> tuple[np.ndarray, list[SpeechEvent]]:
        """Keep event times true when audio was lost upstream (a drop, a restarted node: the detector skips the
        gap, closing open speech at its start) or comes twice (a source resumed from its checkpoint: cut);
        offsets under `REALIGN_S` (a device clock's jitter) are left alone. (samples to push, events)."""
        at = round((t_capture_ns - self.t0_ns) * SAMPLE_RATE / 1e9)
        off, events = at - self.samples, []
        if off > REALIGN_S * SAMPLE_RATE:
            events = self.detector.skip_to(at)
            self.samples = at
        elif off < -REALIGN_S * SAMPLE_RATE:
            samples = samples[min(-off, len(samples)):]
        self.samples += len(samples)
        return samples, events


class VadNode(Node[VadNodeConfig]):
    Config = VadNodeConfig
    accepts = ("pcm",)

    def __init__(self, config: VadNodeConfig | None = None, name: str | None = None) -> None:
        super().__init__(config, name)
        self.streams: dict[str, StreamVad] = {}
        self._restored: dict[str, Any] = {}

    async def setup(self) -> None:
        from stream.models import load_params

        use_compile_cache()
        self.params = load_params("silero-vad")
        VoiceActivityDetector(self.params, self.config.vad).warmup()
        for name, saved in self._restored.items():
            self.streams[name] = StreamVad(VoiceActivityDetector(self.params, self.config.vad),
                                           int(saved["t0_ns"]), float(saved["t0_wall"]), int(saved["samples"]))
            self.streams[name].detector.load_state_dict(saved["detector"])

    async def process(self, msg: Message, port: str = "") -> list[Message]:
        h = msg.header
        samples = mono_pcm(msg)  # MessageError before any state exists for the stream
        s = self.streams.get(h.stream)
        if s is None:
            s = self.streams[h.stream] = StreamVad(VoiceActivityDetector(self.params, self.config.vad),
                                                   h.t_capture_ns, h.t_wall)
        samples, skipped = s.on_time(samples, h.t_capture_ns)
        _, events = s.detector.push(samples)
        return [self._event(h.stream, e) for e in skipped + events]

    async def close(self) -> list[Message]:
        return [self._event(name, e) for name, s in self.streams.items() for e in s.detector.flush()[1]]

    def _event(self, stream: str, event: SpeechEvent) -> Message:
        s = self.streams[stream]
        meta = {"type": "vad", "stream": stream, "t_audio": event.time, "t_capture": s.t0_wall + event.time,
                "t_publish": time.time(), "node": self.name, "speech": event.kind == "start"}
        return Message.new(stream, "event", np.zeros(0, np.uint8), sr=0, t_capture_ns=s.t0_ns + round(event.time * 1e9),
                           t_wall=s.t0_wall + event.time, meta=meta)

    def state_dict(self) -> dict[str, Any]:
        return {name: {"detector": s.detector.state_dict(), "t0_ns": s.t0_ns, "t0_wall": s.t0_wall,
                       "samples": s.samples} for name, s in self.streams.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._restored = state  # applied in setup, once the model is loaded


NODE = VadNode
