"""A node's per-stream state, and the metrics it feeds, stay bounded over hours of stream time (issue 22: the soak
showed the VAD node's RSS rising 5-8 MiB per audio hour; bench/RESULTS.md "Reliability: faults and soak" has the
direct measurement).

Hours of audio through a model node take minutes, so the stream's clock is moved instead: two streams of real
speech (AMI dev00, dev01) in 20 ms blocks, 12 bursts of 4 s per stream spread over 6 hours of capture time (the
node skips each gap on the stream's clock, as after lost audio). Guards, after a warm-up burst: the Python heap
(tracemalloc: lists, dicts, NumPy buffers) grows by under 40 KiB over the second half of the run (measured 16 KiB;
one float kept per 32 ms chunk made it 64 KiB), the checkpointed state by a few bytes (counters growing wider),
and the stream's clock really reached 6 hours. Not timed.

The diarization node the same way, on synthetic windows of a 2-hour two-speaker conversation
(`meeting_windows`), the heap and checkpoint compared at 1 h and 2 h: it kept every closed turn for the RTTM written
at end of stream, 17.5 kB of checkpoint and 0.2 MiB of RSS per stream-hour, which one hour shows as plainly as
three; now it appends the RTTM as turns close and keeps a byte count. Two hours, not six: 7,200 windows an hour
go through the node under tracemalloc (~45 s for two hours).
"""

from __future__ import annotations

import asyncio
import tracemalloc

import msgpack
import numpy as np
import pytest
import soundfile as sf

from nodes.diarization.node import DiarizationNode, DiarizationNodeConfig
from nodes.vad.model import CHUNK, CONTEXT
from nodes.vad.node import VadNode
from stream.message import Message
from stream.rttm import read_rttm
from stream.runner import _pack
from tests.reliability.meeting_windows import windows

BLOCK = 320  # 20 ms at 16 kHz
NS = 1_000_000_000
HOURS, BURSTS, BURST_S = 6, 12, 4.0
DIARIZATION_HOURS = 2


def state_bytes(node: VadNode | DiarizationNode) -> int:
    return len(msgpack.packb(node.state_dict(), default=_pack, use_bin_type=True))


@pytest.fixture(scope="module")
def speech(data) -> list[np.ndarray]:
    out = []
    for clip in ("dev00", "dev01"):
        x, sr = sf.read(data / "diarization" / "ami" / f"{clip}.flac", dtype="float32")
        assert sr == 16000
        out.append(x if x.ndim == 1 else x.mean(axis=1))
    return out


def test_vad_state_is_bounded_over_six_hours_of_stream_time(speech):
    node = VadNode(name="vad")
    loop = asyncio.new_event_loop()
    loop.run_until_complete(node.setup())
    events = 0

    def burst(b: int) -> None:
        nonlocal events
        start_s = b * HOURS * 3600 / BURSTS  # stream time of the burst
        for i in range(int(BURST_S * 16000) // BLOCK):
            for s, x in enumerate(speech):
                at = (b * int(BURST_S * 16000) + i * BLOCK) % (len(x) - BLOCK)
                t_ns = NS + round((start_s + i * BLOCK / 16000) * NS)
                msg = Message.new(f"m{s}", "pcm", x[at:at + BLOCK, None], sr=16000, t_capture_ns=t_ns,
                                  t_wall=t_ns / NS)
                events += len(loop.run_until_complete(node.process(msg)))

    try:
        burst(0)
        tracemalloc.start()
        for b in range(1, BURSTS // 2):
            burst(b)
        heap, state = tracemalloc.get_traced_memory()[0], state_bytes(node)
        for b in range(BURSTS // 2, BURSTS):
            burst(b)
        growth = tracemalloc.get_traced_memory()[0] - heap
        tracemalloc.stop()
        assert growth < 40 * 2**10, f"VAD heap grew by {growth} B over 3 h of stream time"
        assert state_bytes(node) <= state + 16
        for s in node.streams.values():
            assert s.samples >= (HOURS - HOURS / BURSTS) * 3600 * 16000  # the clock went on: 5.5 h and more
            assert len(s.detector.state_dict()["model"]["pending"]) < CONTEXT + CHUNK
        assert events >= 2 * BURSTS  # real speech: the detector decided something in each stream's bursts
    finally:
        loop.run_until_complete(node.close())
        loop.close()


def test_diarization_state_is_bounded_over_two_hours_of_stream_time(tmp_path):
    node = DiarizationNode(DiarizationNodeConfig(rttm_dir=str(tmp_path)), name="diarization")
    loop = asyncio.new_event_loop()
    loop.run_until_complete(node.setup())
    half = round(DIARIZATION_HOURS / 2 * 3600 / node.chain.geometry.step)  # window index at 1 h

    def turns(out: list[Message]) -> int:
        return sum(m.header.meta["type"] == "speaker.turn" for m in out)

    told, heap, state = 0, 0, 0
    try:
        for k, msg in enumerate(windows("m0", DIARIZATION_HOURS * 3600, node.chain.geometry)):
            if k == 1200:  # 10 minutes in: both speakers seen, the clustering's history filled
                tracemalloc.start()
            elif k == half:
                heap, state = tracemalloc.get_traced_memory()[0], state_bytes(node)
            told += turns(loop.run_until_complete(node.process(msg)))
        growth = tracemalloc.get_traced_memory()[0] - heap
        tracemalloc.stop()
        final = state_bytes(node)
        told += turns(loop.run_until_complete(node.close()))
    finally:
        tracemalloc.stop()
        loop.close()
    print(f"diarization: heap +{growth} B over 1 h, checkpoint {state} -> {final} B, {told} turns")
    assert growth < 40 * 2**10, f"diarization heap grew by {growth} B over 1 h of stream time"
    assert final <= state + 256  # when it kept every turn: +17.5 kB over this hour
    assert node.streams["m0"].audio_s >= DIARIZATION_HOURS * 3600 - 1
    [rttm] = tmp_path.iterdir()
    written = read_rttm(rttm)["m0"]
    assert len(written) >= 500 * DIARIZATION_HOURS  # about 540 turns an hour, each written once as it closed
    assert len(written) == len({(t.start, t.label) for t in written}) == told


def test_sinks_made_up_event_types_add_no_time_series(tmp_path):
    """Found by fuzzing (bench/fuzz.py, sinks row): every distinct `type` string an upstream sent became a new
    `stream_event_latency_seconds` series, kept for good (memory and scrape size growing with each made-up type).
    Types without a schema are now counted under event="other", and the events are still published."""
    from prometheus_client import REGISTRY

    from stream.sinks.node import SinksNode

    node = SinksNode.from_table({"sinks": [{"kind": "jsonl", "path": str(tmp_path / "events.jsonl")}]}, "sinks")
    loop = asyncio.new_event_loop()
    loop.run_until_complete(node.setup())
    port = "fuzzed-upstream"
    count = "stream_event_latency_seconds_count"
    try:
        for i in range(300):
            meta = {"type": f"made.up.{i}", "stream": "s0", "t_audio": 0.0, "t_capture": 1.0}
            msg = Message.new("s0", "event", np.zeros(0, np.uint8), sr=0, t_capture_ns=NS, t_wall=1.0, meta=meta)
            loop.run_until_complete(node.process(msg, port))
        level = {"type": "level", "stream": "s0", "t_audio": 0.0, "t_capture": 1.0, "duration": 0.02,
                 "rms_dbfs": -20.0, "peak_dbfs": -10.0}
        loop.run_until_complete(node.process(Message.new("s0", "event", np.zeros(0, np.uint8), sr=0,
                                                         t_capture_ns=NS, t_wall=1.0, meta=level), port))
        series = {s.labels["event"] for m in REGISTRY.collect() for s in m.samples
                  if s.name == count and s.labels.get("node") == port}
        assert series == {"other", "level"}
        assert REGISTRY.get_sample_value(count, {"node": port, "event": "other"}) == 300
        assert len((tmp_path / "events.jsonl").read_text().splitlines()) == 301  # every event still published
    finally:
        loop.run_until_complete(node.close())
        loop.close()
