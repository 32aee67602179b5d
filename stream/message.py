"""The wire format: one message = a msgpack header frame + one raw array frame, validated on decode.

Why two frames: the array travels as its own bytes, so a receiver wraps the ZeroMQ frame buffer in a NumPy array
without copying (`decode` returns a read-only view), and the header stays small and schema-checked.

Header fields (version `VERSION`):
- `stream`: stream id (one microphone / file); per-stream state never mixes streams.
- `seq`: per (stream, sender) counter stamped by the sending runtime; a gap means dropped messages, a seq not above
  the last one of the same `epoch` a duplicate (a node restarted from its checkpoint re-makes what it had sent).
- `epoch` (optional, 0 when absent): the sender's numbering, drawn by a runtime that starts without a checkpoint
  and kept by one that restores it; a new epoch means the sender's seq starts over (no duplicates), 0 means the
  sender cannot tell (a seq going back is then taken for a restart, as before epochs).
- `t_capture_ns`: `time.monotonic_ns()` when the first sample of the audio behind this message was captured
  (system-wide on Linux, so `now - t_capture_ns` is the latency at any hop on one host).
- `t_wall`: the same instant as Unix time in seconds (for users and other hosts).
- `kind`: what the data is: "pcm", "fbank", "emb", "event", "eos" (end of stream), ...
- `sr`: rate of axis 0 in Hz (sample rate for pcm, frame rate for features, 0 when axis 0 is not time).
- `dtype`, `shape`: of the array frame.
- `meta`: small JSON-like dict (events put their event dict here; a message per analysis window puts the
  seconds of audio it advances in `step`, which `duration_s` and the real-time factor use).

Example:
    >>> import numpy as np
    >>> msg = Message.new("mic0", "pcm", np.zeros(1600, np.float32), sr=16000, t_capture_ns=0, t_wall=0.0)
    >>> decode(encode(msg)).header.shape
    (1600,)
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import msgpack
import numpy as np

from stream.errors import MessageError

VERSION = 1
DTYPES = frozenset({"float32", "float64", "int16", "int32", "int64", "uint8", "bool", "complex64"})
MAX_HEADER_BYTES = 64 * 1024
MAX_SEQ = 2**63 - 1  # seq and t_capture_ns are int64 on every sender
MAX_GAP = 1_000_000  # a seq jump past this many messages is a sender reset, not loss (no hwm buffers that much)
# Stream ids and node names become file names (<rttm_dir>/<stream>.rttm, <run dir>/<node>.sock) and topic levels
# (`<kind>/<stream>`, MQTT `stream/<stream>/...`): letters, digits, '_', '.', '-', not starting with '.' or '-'.
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}")
NAME_RULE = "1-64 letters, digits, '_', '.' or '-', not starting with '.' or '-' (no '/', spaces or '..')"
_FIELDS = ("v", "stream", "seq", "t_capture_ns", "t_wall", "kind", "sr", "dtype", "shape", "meta")
_OPTIONAL = ("epoch",)  # added later: a header without it is still valid (epoch 0)


@dataclass(frozen=True, slots=True)
class Header:
    """Everything about a message except its array; see the module docstring for each field's meaning."""

    v: int
    stream: str
    seq: int
    t_capture_ns: int
    t_wall: float
    kind: str
    sr: int
    dtype: str
    shape: tuple[int, ...]
    meta: dict[str, Any] = field(default_factory=dict)
    epoch: int = 0


@dataclass(frozen=True, slots=True)
class Message:
    """A header and its array (C-contiguous, dtype and shape as the header says)."""

    header: Header
    data: np.ndarray

    @classmethod
    def new(
        cls,
        stream: str,
        kind: str,
        data: np.ndarray,
        *,
        sr: int,
        t_capture_ns: int,
        t_wall: float,
        seq: int = 0,
        meta: dict[str, Any] | None = None,
    ) -> Message:
        """A message whose dtype and shape come from `data` (seq is restamped by the runtime on send)."""
        data = np.ascontiguousarray(data)
        header = Header(VERSION, stream, seq, t_capture_ns, t_wall, kind, sr, data.dtype.name, data.shape, meta or {})
        return cls(header, data)

    @classmethod
    def event(cls, source: Message, event: dict[str, Any]) -> Message:
        """An event about the audio of `source`: kind "event", empty array, the event dict in `meta`."""
        return source.derive("event", np.zeros(0, np.uint8), sr=0, meta=event)

    def derive(
        self, kind: str, data: np.ndarray, *, sr: int | None = None, meta: dict[str, Any] | None = None
    ) -> Message:
        """A new message about the same audio (same stream, seq and capture time), e.g. features of this pcm."""
        h = self.header
        return Message.new(
            h.stream, kind, data, sr=h.sr if sr is None else sr, t_capture_ns=h.t_capture_ns,
            t_wall=h.t_wall, seq=h.seq, meta=meta,
        )

    def with_seq(self, seq: int, epoch: int | None = None) -> Message:
        """This message numbered `seq` (and `epoch` when given): what a sending runtime stamps."""
        epoch = self.header.epoch if epoch is None else epoch
        return Message(dataclasses.replace(self.header, seq=seq, epoch=epoch), self.data)

    @property
    def duration_s(self) -> float:
        """Seconds of stream audio this message accounts for: axis 0 over `sr`; when axis 0 is not time (sr 0),
        `meta["step"]`, the audio one analysis window advances (0 if absent, e.g. events)."""
        h = self.header
        if h.sr > 0:
            return h.shape[0] / h.sr if h.shape else 0.0
        step = h.meta.get("step", 0.0)
        return float(step) if isinstance(step, (int, float)) else 0.0


def encode(msg: Message) -> list[bytes | memoryview]:
    """[header, array bytes]; the array frame is a view of `msg.data` (ZeroMQ copies it once on send)."""
    h = msg.header
    data = msg.data
    if data.dtype.name != h.dtype or data.shape != h.shape:
        raise MessageError(
            "header mismatch", f"header says {h.dtype}{list(h.shape)}, data is {data.dtype}{list(data.shape)}"
        )
    if not data.flags.c_contiguous:
        data = np.ascontiguousarray(data)
    header = msgpack.packb({name: getattr(h, name) for name in (*_FIELDS, *_OPTIONAL)}, use_bin_type=True)
    return [header, memoryview(data).cast("B") if data.size else b""]


def decode(frames: Sequence[bytes | memoryview]) -> Message:
    """Validate and unpack `[header, array]` frames; raises MessageError(reason) for anything wrong.

    Reasons: "frames" (not exactly two frames), "header" (not msgpack / not a map / missing or extra fields / too
    big), "version", "field" (a field of the wrong type or range), "dtype", "shape" (array bytes do not match).
    """
    if len(frames) != 2:
        raise MessageError("frames", f"expected 2 frames (header, array), got {len(frames)}")
    raw_header, raw_data = frames
    if len(raw_header) > MAX_HEADER_BYTES:
        raise MessageError("header", f"header of {len(raw_header)} bytes exceeds {MAX_HEADER_BYTES}")
    try:
        fields = msgpack.unpackb(raw_header, raw=False, strict_map_key=True)
    except (ValueError, msgpack.UnpackException, TypeError) as exc:
        raise MessageError("header", f"not msgpack ({exc})") from None
    if not isinstance(fields, dict):
        raise MessageError("header", f"expected a map, got {type(fields).__name__}")
    if fields.get("v") != VERSION:
        raise MessageError("version", f"version {fields.get('v')!r}, this runtime reads {VERSION}")
    if not set(_FIELDS) <= set(fields) <= {*_FIELDS, *_OPTIONAL}:
        raise MessageError("header", f"fields {sorted(fields)} != {sorted(_FIELDS)} (optional: {list(_OPTIONAL)})")
    fields.setdefault("epoch", 0)
    _check_types(fields)
    dtype, shape = fields["dtype"], tuple(fields["shape"])
    if dtype not in DTYPES:
        raise MessageError("dtype", f"{dtype!r} is not one of {sorted(DTYPES)}")
    itemsize = np.dtype(dtype).itemsize
    if math.prod(shape) * itemsize != len(raw_data):
        needed = math.prod(shape) * itemsize
        raise MessageError("shape", f"{dtype}{list(shape)} needs {needed} bytes, got {len(raw_data)}")
    data = np.frombuffer(raw_data, dtype=dtype).reshape(shape)
    fields["shape"] = shape
    return Message(Header(**fields), data)


_TYPES: dict[str, type | tuple[type, ...]] = {
    "stream": str, "seq": int, "t_capture_ns": int, "t_wall": (float, int), "kind": str, "sr": int,
    "dtype": str, "shape": list, "meta": dict, "epoch": int,
}


def valid_name(name: object) -> bool:
    """Whether `name` may be a stream id or a node name (see `NAME_RULE`)."""
    return isinstance(name, str) and NAME.fullmatch(name) is not None


def _check_types(fields: dict[str, Any]) -> None:
    for name, expected in _TYPES.items():
        value = fields[name]
        if not isinstance(value, expected) or isinstance(value, bool):
            raise MessageError("field", f"{name}={value!r} is not {expected}")
    if not (0 <= fields["seq"] <= MAX_SEQ and 0 <= fields["t_capture_ns"] <= MAX_SEQ and 0 <= fields["epoch"] <= MAX_SEQ
            and 0 <= fields["sr"] < 2**31):
        raise MessageError("field", "seq, epoch, t_capture_ns and sr must be non-negative int64 (sr int32)")
    if not math.isfinite(fields["t_wall"]):
        raise MessageError("field", f"t_wall={fields['t_wall']!r} is not a finite time")
    if fields["stream"] != "-" and not valid_name(fields["stream"]):
        raise MessageError("field", f"stream id {fields['stream']!r} must be {NAME_RULE}")
    if not fields["kind"] or len(fields["kind"]) > 64:
        raise MessageError("field", "kind must be 1-64 characters")
    shape = fields["shape"]
    if len(shape) > 8 or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise MessageError("field", f"shape {shape!r} must be at most 8 non-negative ints")


class Order(Enum):
    """Where a message falls in its (stream, sender) sequence."""

    OK = "ok"
    GAP = "gap"  # messages were lost before this one
    DUPLICATE = "duplicate"  # seq not above the last of its epoch: had already (a restarted sender re-made it)
    OUT_OF_ORDER = "out_of_order"  # a new epoch, or (epoch 0) seq went back or jumped past MAX_GAP: the sender
    #   restarted without its checkpoint (one ZeroMQ pipe never reorders)


class SeqTracker:
    """Detects gaps, duplicates and restarts per (sender, stream); its state is checkpointed so a restart sees the
    gap, and asks its upstreams to replay from there."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], tuple[int, int]] = {}  # (sender, stream) -> (epoch, seq)

    def check(self, sender: str, header: Header) -> tuple[Order, int]:
        """(order, number of messages missing before this one); remembers `header.seq` unless a duplicate."""
        key = (sender, header.stream)
        last = self._last.get(key)
        if self.seen(sender, header):
            return Order.DUPLICATE, 0
        self._last[key] = (header.epoch, header.seq)
        if last is None:
            return Order.OK, 0
        epoch, seq = last
        if epoch != header.epoch:
            return Order.OUT_OF_ORDER, 0
        if header.seq == seq + 1:
            return Order.OK, 0
        if seq + 1 < header.seq <= seq + 1 + MAX_GAP:
            return Order.GAP, header.seq - seq - 1
        return Order.OUT_OF_ORDER, 0

    def seen(self, sender: str, header: Header) -> bool:
        """Whether this message of a sender with an epoch was had already (same epoch, seq not above the last)."""
        last = self._last.get((sender, header.stream))
        return header.epoch != 0 and last is not None and last[0] == header.epoch and header.seq <= last[1]

    def mark(self, sender: str, header: Header) -> None:
        """Remember `header` as the last of its (sender, stream), unchecked (the runner's processed positions)."""
        self._last[(sender, header.stream)] = (header.epoch, header.seq)

    def positions(self, sender: str) -> dict[str, int]:
        """Last seq seen per stream from `sender`."""
        return {stream: seq for (who, stream), (_, seq) in self._last.items() if who == sender}

    def after(self, sender: str) -> dict[str, list[int]]:
        """[epoch, last seq] per stream from `sender`: where a replay from it starts."""
        return {stream: [epoch, seq] for (who, stream), (epoch, seq) in self._last.items() if who == sender}

    def streams(self) -> set[str]:
        """Stream ids seen so far (from any sender)."""
        return {stream for _, stream in self._last}

    def state_dict(self) -> dict[str, list[int]]:
        return {f"{sender}\x00{stream}": [epoch, seq] for (sender, stream), (epoch, seq) in self._last.items()}

    def load_state_dict(self, state: dict[str, list[int]]) -> None:
        last = {}
        for key, (epoch, seq) in state.items():
            sender, _, stream = key.partition("\x00")
            if not (isinstance(epoch, int) and isinstance(seq, int) and 0 <= epoch <= MAX_SEQ and 0 <= seq <= MAX_SEQ):
                raise ValueError(f"seq position {key!r}: {[epoch, seq]!r} is not [epoch, seq]")
            last[(sender, stream)] = (epoch, seq)
        self._last = last


def now() -> tuple[int, float]:
    """(monotonic ns, Unix seconds) of this instant: the pair a capture stamps on its blocks."""
    return time.monotonic_ns(), time.time()
