"""Replay and exactly-once on the wire (stream/transport.py, stream/runner.py), real processes, real ZeroMQ.

Guards: a publisher replays from its ring what follows the positions a request names, of the kinds it names, under
the requester's replay topic, then its end mark; its ring is bounded in seconds and bytes; a malformed request is
answered with the end mark alone. A node restarted from a checkpoint asks for what follows its checkpoint, takes the
replayed messages before the live ones held meanwhile (each once), counts what the ring no longer had as dropped,
and re-numbers its outputs from its checkpointed seq and epoch. A message of the same epoch and a seq already seen
is a duplicate (dropped, counted); a new epoch is a restart. A node that subscribes to every topic ignores other
nodes' replays.
"""

from __future__ import annotations

import asyncio
import time

import msgpack
import numpy as np
import zmq
import zmq.asyncio

from stream.message import Message, decode, encode
from stream.runner import save_state
from stream.transport import ASK, Publisher, replay_prefix, replay_request, subscribe, topic

from reliability_wire import eos, pcm


def _msg(kind: str, seq: int, stream: str = "s", epoch: int = 7, size: int = 4) -> Message:
    msg = Message.new(stream, kind, np.full(size, seq, np.float32), sr=16000, t_capture_ns=seq + 1, t_wall=0.0)
    return msg.with_seq(seq, epoch)


def _pcm(seq: int, epoch: int, stream: str = "s") -> list[bytes]:
    frames = pcm(seq, stream)
    header = msgpack.unpackb(frames[1])
    return [frames[0], msgpack.packb({**header, "epoch": epoch}), frames[2]]


async def _until_end(sock: zmq.asyncio.Socket, name: str) -> list[list[bytes]]:
    """Frames under `name`'s replay topic until its end mark."""
    got = []
    while (frames := await asyncio.wait_for(sock.recv_multipart(), 5)) != [replay_prefix(name)]:
        got.append(frames)
    return got


async def test_publisher_replays_what_follows_the_request_of_the_kinds_asked(tmp_path):
    ctx = zmq.asyncio.Context()
    pub = Publisher(ctx, f"ipc://{tmp_path / 'p.sock'}", ["a"], 1000, name="up", epoch=7, replay_s=10.0,
                    replay_bytes=2**20)
    try:
        for seq in range(10):
            await pub.send(_msg("pcm", seq))
            await pub.send(_msg("event", seq, stream="t"))
        request = replay_request({"s": [7, 5], "x": [7, 3]}, ["pcm", "eos"])  # x: none left
        sock = subscribe(ctx, f"ipc://{tmp_path / 'p.sock'}", "a", ["pcm"], 1000, 500, replay=request)
        replayed = await _until_end(sock, "a")
        assert [f[0] for f in replayed] == [replay_prefix("a") + topic("pcm", "s")] * 4
        assert [decode(f[1:]).header.seq for f in replayed] == [6, 7, 8, 9]
        assert decode(replayed[0][1:]).data[0] == 6.0
        other_epoch = subscribe(ctx, f"ipc://{tmp_path / 'p.sock'}", "b", [], 1000, 500,
                                replay=replay_request({"s": [3, 5]}, []))
        replayed = await _until_end(other_epoch, "b")  # seqs of another epoch: all of it
        assert len(replayed) == 20
        raw = ctx.socket(zmq.SUB)
        raw.connect(f"ipc://{tmp_path / 'p.sock'}")
        raw.setsockopt(zmq.SUBSCRIBE, replay_prefix("c"))
        raw.setsockopt(zmq.SUBSCRIBE, ASK + b"c/\xc1 not msgpack")
        assert await _until_end(raw, "c") == []  # answered, with nothing
        await pub.send(_msg("pcm", 10))
        assert decode((await asyncio.wait_for(sock.recv_multipart(), 5))[1:]).header.seq == 10  # still publishing
    finally:
        pub.close()
        ctx.destroy(linger=0)


async def test_replay_ring_is_bounded_in_seconds_and_bytes(tmp_path):
    ctx = zmq.asyncio.Context()
    entry = sum(len(f) for f in [topic("pcm", "s"), *encode(_msg("pcm", 0, size=1000))])
    by_bytes = Publisher(ctx, f"ipc://{tmp_path / 'b.sock'}", [], 1000, epoch=1, replay_s=60.0,
                         replay_bytes=3 * entry)
    by_time = Publisher(ctx, f"ipc://{tmp_path / 't.sock'}", [], 1000, epoch=1, replay_s=0.2, replay_bytes=2**30)
    off = Publisher(ctx, f"ipc://{tmp_path / 'o.sock'}", [], 1000, epoch=1, replay_s=0.0, replay_bytes=2**30)
    try:
        for seq in range(10):
            for pub in (by_bytes, by_time, off):
                await pub.send(_msg("pcm", seq, size=1000))
            if seq == 4:
                time.sleep(0.3)
        assert [e.seq for e in by_bytes.ring] == [7, 8, 9] and by_bytes.ring_bytes == 3 * entry
        assert [e.seq for e in by_time.ring] == [5, 6, 7, 8, 9]
        assert not off.ring
    finally:
        for pub in (by_bytes, by_time, off):
            pub.close()
        ctx.destroy(linger=0)


async def test_duplicates_are_dropped_and_counted_a_new_epoch_is_a_restart(node_process, run_metrics):
    node = await node_process("loudness")
    for frames in (_pcm(0, 5), _pcm(1, 5), _pcm(1, 5), _pcm(0, 5), _pcm(2, 5), _pcm(0, 6), _pcm(1, 6)):
        await node.send(frames)
    assert len(await node.events(5)) == 5
    await node.send(eos({"pcm": {"s": 1}}))
    assert await asyncio.wait_for(node.proc.wait(), 10) == 0
    metrics = run_metrics(node.metrics_dir)
    counts = {r: metrics.get("stream_messages_total", node="node", result=r)
              for r in ("ok", "duplicate", "out_of_order", "dropped")}
    assert counts == {"ok": 5, "duplicate": 2, "out_of_order": 1, "dropped": 0}


async def test_restarted_node_takes_the_replay_before_live_messages_each_once(node_process, run_metrics, tmp_path):
    """Checkpoint: processed seq 9 of stream s (epoch 7); outputs numbered up to 9 in epoch 99. The test, as the
    upstream, sees the request, sends live seq 12 (held), then replays 11 and 12 (10 is no longer in its ring) and
    its end mark, then live 13."""
    state = tmp_path / "node.msgpack"
    save_state(state, {"node": {"t0_ns": {"s": 1}, "pending": {}}, "seq_in": {"capture\x00s": [7, 9]},
                       "seq_out": {"s": 10}, "sent": {"event": {"s": 9}}, "epoch": 99})
    node = await node_process("loudness", state_path=str(state))
    prefix = replay_prefix("node")
    seen = list(node.subscriptions)
    while not seen[-1].startswith(b"\x01" + ASK):  # ZeroMQ sends them in byte order: the request last
        seen.append(await asyncio.wait_for(node.upstream.recv(), 5))
    assert seen[-4:-1] == [b"\x01" + prefix, b"\x01eos/", b"\x01pcm/"]
    request = seen[-1][1 + len(ASK) + len(b"node/"):]
    assert msgpack.unpackb(request) == {"after": {"s": [7, 9]}, "kinds": ["pcm", "eos"]}
    await node.send(_pcm(12, 7))  # live, while the replay is awaited
    for seq in (11, 12):
        frames = _pcm(seq, 7)
        await node.send([prefix + frames[0], *frames[1:]])
    await node.send([prefix])
    await node.send(_pcm(13, 7))
    got = []
    while len(got) < 3:
        frames = await asyncio.wait_for(node.out.recv_multipart(), 10)
        if frames[0].startswith(b"event/"):
            header = msgpack.unpackb(frames[1])
            got.append((header["epoch"], header["seq"], round(header["meta"]["t_audio"], 2)))
    assert got == [(99, 10, 0.22), (99, 11, 0.24), (99, 12, 0.26)]  # replayed 11, 12 then live 13, once each
    await node.send(eos({"pcm": {"s": 13}}))
    assert await asyncio.wait_for(node.proc.wait(), 10) == 0
    metrics = run_metrics(node.metrics_dir)
    assert metrics.get("stream_messages_total", node="node", result="dropped") == 1  # seq 10: gone from the ring
    assert metrics.get("stream_messages_total", node="node", result="duplicate") == 0  # live 12: had, not counted
    assert metrics.get("stream_messages_total", node="node", result="ok") == 3


async def test_a_node_taking_every_topic_ignores_other_nodes_replays(node_process, run_metrics):
    node = await node_process("tests.runtime.faulty:SlowStart", {"seconds": 0.0})
    frames = pcm(0)
    await node.send([replay_prefix("other") + frames[0], *frames[1:]])
    await node.send([replay_prefix("other")])
    await node.send(pcm(1))
    await node.send(eos({"pcm": {"s": 1}}))
    assert await asyncio.wait_for(node.proc.wait(), 10) == 0
    metrics = run_metrics(node.metrics_dir)
    assert metrics.get("stream_messages_total", node="node", result="ok") == 1  # pcm 1; the replayed seq 0 not taken
    assert metrics.get("stream_messages_total", node="node", result="malformed") == 0
