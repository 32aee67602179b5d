"""Wire frames the reliability tests send to node processes."""

from __future__ import annotations

import numpy as np

from stream.message import Message, encode
from stream.transport import topic


def pcm(seq: int, stream: str = "s", frames: int = 320, value: float = 0.1) -> list[bytes]:
    """A float32 [frames, 1] pcm block as wire frames (topic, header, data)."""
    msg = Message.new(stream, "pcm", np.full((frames, 1), value, np.float32), sr=16000,
                      t_capture_ns=1 + seq * 20_000_000, t_wall=0.0, seq=seq)
    return [topic("pcm", stream), *[bytes(f) for f in encode(msg)]]


def eos(sent: dict[str, dict[str, int]] | None = None) -> list[bytes]:
    """End-of-stream naming the last seq sent per kind and stream (as the runtime sends it); `{}` by default."""
    msg = Message.new("-", "eos", np.zeros(0, np.uint8), sr=0, t_capture_ns=1, t_wall=0.0,
                      meta={"sent": sent or {}})
    return [topic("eos", "-"), *[bytes(f) for f in encode(msg)]]
