"""1,000 malformed messages into a loudness node process, interleaved with 200 good ones, over real ZeroMQ.

Guards: the node stays alive, counts exactly 1,000 malformed, processes all 200 good blocks in order (200
level events downstream), sees no gap, and exits cleanly at end of stream.
"""

from __future__ import annotations

import asyncio
import os
import sys

import msgpack
import numpy as np
import zmq
import zmq.asyncio

from stream.message import Message, encode
from stream.paths import REPO_ROOT
from stream.runner import NodeSpec
from stream.transport import READY, topic

GOOD, BAD = 200, 1000


def _good(seq: int) -> list[bytes]:
    block = np.full((320, 1), 0.1, np.float32)
    msg = Message.new("s", "pcm", block, sr=16000, t_capture_ns=seq * 20_000_000, t_wall=0.0, seq=seq)
    return [topic("pcm", "s"), *[bytes(f) for f in encode(msg)]]


def _bad(i: int, rng: np.random.Generator) -> list[bytes]:
    """Five kinds in turn: random bytes, wrong version, truncated, wrong dtype, wrong shape."""
    head, data = _good(0)[1:]
    fields = msgpack.unpackb(head)
    kind = i % 5
    if kind == 0:
        frames = [rng.bytes(int(rng.integers(0, 64))) for _ in range(int(rng.integers(1, 4)))]
    elif kind == 1:
        frames = [msgpack.packb({**fields, "v": int(rng.integers(2, 99))}), data]
    elif kind == 2:
        frames = [head] if i % 2 else [head, data[: int(rng.integers(0, len(data)))]]
    elif kind == 3:
        if i % 2:  # a dtype the wire format does not carry
            frames = [msgpack.packb({**fields, "dtype": "float16", "shape": [len(data) // 2]}), data]
        else:  # valid on the wire (its own stream, in sequence) but not the float32 pcm loudness takes
            wrong = {**fields, "stream": "int", "seq": i // 10, "dtype": "int16", "shape": [len(data) // 2]}
            frames = [msgpack.packb(wrong), data]
    else:
        frames = [msgpack.packb({**fields, "shape": [321, 1]}), data]
    return [topic("pcm", "s"), *frames]


async def test_node_survives_and_counts_1000_malformed(tmp_path, run_metrics):
    (tmp_path / "metrics").mkdir()
    ctx = zmq.asyncio.Context()
    upstream = ctx.socket(zmq.XPUB)
    upstream.setsockopt(zmq.XPUB_VERBOSE, 1)
    upstream.setsockopt(zmq.SNDHWM, 100_000)
    upstream.bind(f"ipc://{tmp_path / 'up.sock'}")
    out = ctx.socket(zmq.SUB)
    out.setsockopt(zmq.SUBSCRIBE, b"")
    out.setsockopt(zmq.SUBSCRIBE, READY + b"probe")
    out.connect(f"ipc://{tmp_path / 'node.sock'}")
    spec = NodeSpec(name="loud", kind="loudness", config={}, endpoint=f"ipc://{tmp_path / 'node.sock'}",
                    inputs={"capture": f"ipc://{tmp_path / 'up.sock'}"}, subscribers=["probe"])
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"), PYTHONPATH=str(REPO_ROOT))
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "stream.runner", env=env,
                                                stdin=asyncio.subprocess.PIPE)
    proc.stdin.write(spec.to_json().encode() + b"\n")
    proc.stdin.close()
    try:
        while await asyncio.wait_for(upstream.recv(), 20) != b"\x01" + READY + b"loud":
            pass  # the node subscribed: nothing we send from now on is lost to a slow join
        rng = np.random.default_rng(0)
        last: dict[str, int] = {}  # per stream, the last seq sent in a valid header: what end-of-stream names
        for seq in range(GOOD):
            await upstream.send_multipart(_good(seq))
            last["s"] = seq
            for i in range(seq * BAD // GOOD, (seq + 1) * BAD // GOOD):
                await upstream.send_multipart(_bad(i, rng))
                if i % 5 == 3 and i % 2 == 0:  # the valid int16 block on its own stream
                    last["int"] = i // 10
        eos = Message.new("-", "eos", np.zeros(0, np.uint8), sr=0, t_capture_ns=0, t_wall=0.0,
                          meta={"sent": {"pcm": last}})
        await upstream.send_multipart([topic("eos", "-"), *encode(eos)])
        events = []
        while len(events) < GOOD:
            frames = await asyncio.wait_for(out.recv_multipart(), 20)
            if frames[0].startswith(b"event/"):
                events.append(msgpack.unpackb(frames[1])["meta"])
        assert proc.returncode is None  # alive after all of it
        assert await asyncio.wait_for(proc.wait(), 20) == 0  # and ends cleanly at end of stream
    finally:
        if proc.returncode is None:
            proc.kill()
        ctx.destroy(linger=0)
    assert [round(e["t_audio"] / 0.02) for e in events] == list(range(GOOD))
    metrics = run_metrics(tmp_path / "metrics")
    assert metrics.get("stream_messages_total", node="loud", result="malformed") == BAD
    assert metrics.get("stream_messages_total", node="loud", result="ok") == GOOD
    assert metrics.get("stream_messages_total", node="loud", result="dropped") == 0
