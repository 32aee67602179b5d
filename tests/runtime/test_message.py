"""Wire format: round trip, zero-copy decode, every malformed kind rejected with its reason, seq tracking."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from stream.errors import MessageError
from stream.message import VERSION, Message, Order, SeqTracker, decode, encode


def _pcm(seq: int = 0, n: int = 1600) -> Message:
    return Message.new("mic0", "pcm", np.arange(n, dtype=np.float32), sr=16000, t_capture_ns=123, t_wall=1.5, seq=seq)


def test_round_trip_is_exact_and_zero_copy():
    msg = _pcm(seq=7)
    frames = encode(msg)
    buf = bytearray(frames[1])
    out = decode([bytes(frames[0]), buf])
    assert out.header == msg.header
    np.testing.assert_array_equal(out.data, msg.data)
    buf[0:4] = np.float32(42.0).tobytes()
    assert out.data[0] == 42.0  # a view of the received buffer, not a copy
    assert out.duration_s == 0.1


def _header(**change):
    fields = {"v": VERSION, "stream": "s", "seq": 0, "t_capture_ns": 0, "t_wall": 0.0, "kind": "pcm", "sr": 16000,
              "dtype": "float32", "shape": [4], "meta": {}}
    fields.update(change)
    return msgpack.packb(fields)


@pytest.mark.parametrize(
    ("frames", "reason"),
    [
        ([b"\xc1garbage", b""], "header"),
        ([_header()], "frames"),
        ([msgpack.packb([1, 2]), b""], "header"),
        ([_header(v=2), bytes(16)], "version"),
        ([_header(dtype="float16"), bytes(8)], "dtype"),
        ([_header(), bytes(15)], "shape"),
        ([_header(shape=[2, 3]), bytes(16)], "shape"),
        ([_header(seq=-1), bytes(16)], "field"),
        ([_header(shape=[True]), bytes(4)], "field"),
        ([_header(stream=3), bytes(16)], "field"),
    ],
)
def test_malformed_messages_name_their_reason(frames, reason):
    with pytest.raises(MessageError) as info:
        decode(frames)
    assert info.value.reason == reason


def test_seq_tracker_counts_gaps_and_restarts_per_sender_and_stream():
    tracker = SeqTracker()
    assert tracker.check("a", _pcm(0).header) == (Order.OK, 0)
    assert tracker.check("b", _pcm(5).header) == (Order.OK, 0)  # first seen from b
    assert tracker.check("a", _pcm(1).header) == (Order.OK, 0)
    assert tracker.check("a", _pcm(4).header) == (Order.GAP, 2)
    restored = SeqTracker()
    restored.load_state_dict(tracker.state_dict())
    assert restored.check("a", _pcm(9).header) == (Order.GAP, 4)
    assert restored.check("a", _pcm(0).header) == (Order.OUT_OF_ORDER, 0)
