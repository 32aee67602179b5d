"""Loudness node: one "level" event per pcm block (RMS and peak in dBFS), or one per `every` blocks.

It proves the path capture -> node -> sinks end to end without a model. `t_audio` is the block's start in
seconds since the first block of its stream, from capture stamps (so it stays right across gaps and restarts:
the first stamp per stream is checkpointed state).

    [[nodes]]
    name = "loudness"
    kind = "loudness"
    inputs = ["capture"]
    config = { every = 1, floor_dbfs = -120.0 }
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from stream.errors import ConfigError
from stream.message import Message
from stream.node import Node
from stream.pcm import pcm_frames


@dataclass(frozen=True)
class LoudnessConfig:
    every: int = 1  # blocks per event (>= 1): 5 with 20 ms blocks = 10 events per second
    floor_dbfs: float = -120.0  # level reported for digital silence, dBFS

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ConfigError(f"loudness every must be >= 1 block, got {self.every}")


def level_dbfs(samples: np.ndarray, floor_dbfs: float) -> tuple[float, float]:
    """(RMS, peak) of float samples in dBFS (full scale = 1.0), floored at `floor_dbfs`."""
    x = np.asarray(samples, np.float64)
    floor = 10.0 ** (floor_dbfs / 20.0)
    rms = float(np.sqrt(np.mean(x * x))) if x.size else 0.0
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return 20.0 * np.log10(max(rms, floor)), 20.0 * np.log10(max(peak, floor))


class LoudnessNode(Node[LoudnessConfig]):
    Config = LoudnessConfig
    accepts = ("pcm",)

    def __init__(self, config: LoudnessConfig | None = None, name: str | None = None) -> None:
        super().__init__(config, name)
        self.t0_ns: dict[str, int] = {}  # first capture stamp per stream
        self.pending: dict[str, list[tuple[Message, np.ndarray]]] = {}  # (block, its real samples) per stream

    async def process(self, msg: Message, port: str = "") -> list[Message]:
        h = msg.header
        samples = pcm_frames(msg).ravel()  # MessageError for anything but usable float32 pcm (NaN included)
        self.t0_ns.setdefault(h.stream, h.t_capture_ns)
        blocks = self.pending.setdefault(h.stream, [])
        blocks.append((msg, samples))
        if len(blocks) < self.config.every:
            return []
        del self.pending[h.stream]
        return [self._event(blocks)]

    def _event(self, blocks: list[tuple[Message, np.ndarray]]) -> Message:
        first = blocks[0][0]
        rms, peak = level_dbfs(np.concatenate([samples for _, samples in blocks]), self.config.floor_dbfs)
        return Message.event(first, {
            "type": "level",
            "stream": first.header.stream,
            "t_audio": (first.header.t_capture_ns - self.t0_ns[first.header.stream]) / 1e9,
            "t_capture": first.header.t_wall,
            "duration": sum(b.duration_s for b, _ in blocks),
            "rms_dbfs": round(rms, 2),
            "peak_dbfs": round(peak, 2),
        })

    def state_dict(self) -> dict[str, Any]:
        """First stamps, and the blocks of an event not yet complete (a restart re-processes what followed them)."""
        pending = {stream: [[m.header.t_capture_ns, m.header.t_wall, m.header.sr, x] for m, x in blocks]
                   for stream, blocks in self.pending.items()}
        return {"t0_ns": dict(self.t0_ns), "pending": pending}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.t0_ns = dict(state["t0_ns"])
        self.pending = {stream: [(Message.new(stream, "pcm", np.asarray(x, np.float32), sr=int(sr),
                                              t_capture_ns=int(t_ns), t_wall=float(t_wall)), np.asarray(x, np.float32))
                                  for t_ns, t_wall, sr, x in blocks]
                        for stream, blocks in state["pending"].items()}


NODE = LoudnessNode
