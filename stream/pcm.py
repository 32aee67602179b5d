"""The one check every node applies to a "pcm" message before touching its samples.

A message that passed the wire check (`stream.message.decode`) can still be unusable audio: a 0-d or 3-d array,
no channels, a `valid_frames` that is not a frame count, NaN or infinite samples, samples far beyond full scale,
a rate of 0. Nodes call
`pcm_frames` (or `mono`) and let its MessageError reach the runtime, which counts the message as malformed and goes on.
"""

from __future__ import annotations

import numpy as np

from stream.errors import MessageError
from stream.message import Message

MAX_CHANNELS = 64
MAX_AMPLITUDE = 1000.0  # 60 dB over full scale (1.0): float pcm beyond this is not audio (and overflows power)


def pcm_frames(msg: Message, rate: int | None = None) -> np.ndarray:
    """The real frames of a float32 pcm message as [frames, channels] (a last block's padding cut), or
    MessageError saying what is wrong: kind, dtype, rank, channels, rate (`rate` when given), valid_frames, NaN."""
    h = msg.header
    if h.kind != "pcm" or h.dtype != "float32" or len(h.shape) not in (1, 2):
        raise MessageError("input", f"expected float32 pcm [frames] or [frames, channels], got {h.kind} {h.dtype} "
                                    f"{list(h.shape)}")
    channels = h.shape[1] if len(h.shape) == 2 else 1
    if not 1 <= channels <= MAX_CHANNELS:
        raise MessageError("input", f"pcm with {channels} channels; 1 to {MAX_CHANNELS} are accepted")
    if h.sr <= 0 or (rate is not None and h.sr != rate):
        raise MessageError("input", f"pcm at {h.sr} Hz, this node takes {rate or 'any positive rate in'} Hz: set "
                                    f"the capture node's rate = {rate or 16000}")
    data = msg.data.reshape(len(msg.data), channels)
    valid = h.meta.get("valid_frames", len(data))
    if not isinstance(valid, int) or isinstance(valid, bool) or not 0 <= valid <= len(data):
        raise MessageError("input", f"valid_frames={valid!r} must be a frame count in [0, {len(data)}]")
    data = data[:valid]
    if not np.isfinite(data).all():
        raise MessageError("nonfinite", "pcm has NaN or infinite samples (the capture node replaces them with "
                                        "silence; check the sender)")
    if data.size and np.abs(data).max() > MAX_AMPLITUDE:
        raise MessageError("amplitude", f"pcm samples reach {np.abs(data).max():.3g}; float pcm is full scale at "
                                        f"1.0 and this node takes up to {MAX_AMPLITUDE:g}")
    return data


def mono(msg: Message, rate: int | None = None) -> np.ndarray:
    """`pcm_frames` down-mixed to one float32 channel [frames]."""
    frames = pcm_frames(msg, rate)
    return frames[:, 0] if frames.shape[1] == 1 else frames.mean(axis=1, dtype=np.float32)
