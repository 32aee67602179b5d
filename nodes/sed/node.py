"""SED node: 16 kHz pcm of one or many streams -> `sound.start` / `sound.stop` alerts and periodic `sound.tags`.

Per stream a `Detector` (streaming log-mel, a 0.96 s YAMNet patch every `hop`, the rules of `rules`, see
nodes/sed/rules.py and configs/alerts.toml). A `sound.start` is published `smooth // 2` hops plus one patch after
the onset it reports (`t_audio`); its header `t_capture_ns` is the capture time of that onset, so the sinks'
latency histogram shows onset -> alert. `sound.stop` carries the event's onset (`start`) and peak score, and is
published once the score has stayed below the rule's release for its `hold` s (its `t_audio` is where it fell);
`sound.tags` the `tags_k` classes with the highest scores over the last `tags_every` s.

Bad input never alerts: pcm at another rate or with NaN is refused (MessageError, counted as malformed), and
patches that are silent (below a rule's `gate_dbfs`) or clipped are gated, counted in
`stream_sed_gated_patches{node,reason}`. Cooldowns and open events are checkpointed state.

    [[nodes]]
    name = "sed"
    kind = "sed"
    inputs = ["capture"]
    config = { rules = "configs/alerts.toml", hop = 0.08 }
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nodes.sed.decode import Edge
from nodes.sed.detector import DEFAULT_HOP, Detector, Tags, hop_frames
from nodes.sed.frontend import SAMPLE_RATE
from nodes.sed.rules import DEFAULT_RULES, load_rules
from stream.audioclock import REALIGN_S
from stream.errors import ConfigError
from stream.message import Message
from stream.metrics import SED_GATED
from stream.node import Node
from stream.pcm import mono


@dataclass(frozen=True)
class SedConfig:
    rules: str = str(DEFAULT_RULES)  # rules TOML (configs/alerts.toml format); relative paths from the cwd
    hop: float = DEFAULT_HOP  # s between patches, a multiple of 0.01 in [0.01, 0.96]: smaller: earlier alerts, more CPU
    tags_every: float = 1.0  # s of audio per sound.tags event, >= 0 (0 = none)
    tags_k: int = 5  # classes per sound.tags event, in [1, 521]
    max_batch: int = 8  # patches per model call (file mode and catching up)

    def __post_init__(self) -> None:
        hop_frames(self.hop)
        if self.tags_every < 0 or not 1 <= self.tags_k <= 521 or self.max_batch < 1:
            raise ConfigError(f"sed: tags_every >= 0, tags_k in [1, 521] and max_batch >= 1, got {self}")
        if not Path(self.rules).is_file():
            raise ConfigError(f"sed: rules file {self.rules!r} not found (the shipped one is {DEFAULT_RULES})")


@dataclass
class StreamState:
    detector: Detector
    t0_ns: int  # capture time of audio time 0 (monotonic ns)
    t0_wall: float  # the same, Unix s
    aligning: bool = False  # after a skip: cutting samples until the next patch's start


def edge_event(edge: Edge, stream: str, t0_wall: float, node: str) -> dict[str, Any]:
    """The user-facing event of one edge (stream/schemas/sound.start.json, sound.stop.json)."""
    event = {"type": f"sound.{edge.kind}", "stream": stream, "t_audio": round(edge.t, 3),
             "t_capture": t0_wall + edge.t, "t_publish": time.time(), "node": node, "rule": edge.rule,
             "score": round(min(1.0, max(0.0, edge.score)), 4), "decided": round(edge.decided, 3)}
    if edge.kind == "stop":
        event["start"] = round(edge.onset, 3)
        event["duration"] = round(max(0.0, edge.t - edge.onset), 3)
    return event


def tags_event(tags: Tags, stream: str, t0_wall: float, node: str) -> dict[str, Any]:
    return {"type": "sound.tags", "stream": stream, "t_audio": round(tags.t, 3), "t_capture": t0_wall + tags.t,
            "t_publish": time.time(), "node": node, "duration": round(tags.duration, 3),
            "tags": [{"label": name, "score": round(score, 4)} for name, score in tags.top]}


class SedNode(Node[SedConfig]):
    Config = SedConfig
    accepts = ("pcm",)

    def __init__(self, config: SedConfig | None = None, name: str | None = None) -> None:
        super().__init__(config, name)
        self.streams: dict[str, StreamState] = {}
        self._restored: dict[str, Any] = {}

    async def setup(self) -> None:
        from nodes.sed.yamnet import load_yamnet
        from stream.models import use_compile_cache

        use_compile_cache()  # a restarted node loads its compiled model from disk
        self.model = load_yamnet(max_batch=self.config.max_batch)
        self.rules = load_rules(Path(self.config.rules), self.model.class_names)
        self.model.warmup()

    def _stream(self, msg: Message) -> StreamState:
        h = msg.header
        s = self.streams.get(h.stream)
        if s is None:
            c = self.config
            detector = Detector(self.model, self.rules, c.hop, c.tags_every, c.tags_k)
            s = self.streams[h.stream] = StreamState(detector, h.t_capture_ns, h.t_wall)
            saved = self._restored.pop(h.stream, None)
            if saved:  # continue the decisions on the stream's clock from the next patch; the audio buffered
                # before the restart is lost, a gap as the outage is (`on_time`)
                s.t0_ns, s.t0_wall = int(saved["t0_ns"]), float(saved["t0_wall"])
                detector.decoder.load_state_dict(saved["decoder"])
                detector.tag_start = float(saved["tag_start"])
                detector.skip_to(detector.decoder.patches * detector.hop)
        return s

    def on_time(self, s: StreamState, samples: np.ndarray, t_capture_ns: int) -> np.ndarray:
        """Keep event times true when audio was lost upstream (a drop, a restarted node: the detector skips the
        gap, stream.audioclock) or comes twice (a source resumed from its checkpoint): the samples to push."""
        at = (t_capture_ns - s.t0_ns) / 1e9
        if at - s.detector.seconds > REALIGN_S:
            s.detector.skip_to(at)
            s.aligning = True
        off = at - s.detector.seconds
        if off < -REALIGN_S or (s.aligning and off < 0):
            samples = samples[min(round(-off * SAMPLE_RATE), len(samples)):]
        s.aligning = s.aligning and not len(samples)
        return samples

    async def process(self, msg: Message, port: str = "") -> list[Message]:
        samples = mono(msg, SAMPLE_RATE)
        s = self._stream(msg)
        out = s.detector.push(self.on_time(s, samples, msg.header.t_capture_ns))
        for reason, n in out.gated.items():
            SED_GATED.labels(node=self.name, reason=reason).inc(n)
        return self._messages(msg.header.stream, s, out.edges, out.tags)

    async def close(self) -> list[Message]:
        return [m for name, s in self.streams.items() for m in self._messages(name, s, s.detector.finish(), [])]

    def _messages(self, stream: str, s: StreamState, edges: list[Edge], tags: list[Tags]) -> list[Message]:
        events = [(e.t, edge_event(e, stream, s.t0_wall, self.name)) for e in edges]
        events += [(t.t, tags_event(t, stream, s.t0_wall, self.name)) for t in tags]
        return [Message.new(stream, "event", np.zeros(0, np.uint8), sr=0, t_capture_ns=s.t0_ns + round(t * 1e9),
                            t_wall=s.t0_wall + t, meta=event) for t, event in events]

    def state_dict(self) -> dict[str, Any]:
        return {name: {"decoder": s.detector.decoder.state_dict(), "t0_ns": s.t0_ns, "t0_wall": s.t0_wall,
                       "tag_start": s.detector.tag_start} for name, s in self.streams.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._restored = dict(state)


NODE = SedNode
