"""The meeting nodes bare (no sockets): two streams through one segmentation node, batched, with restarts.

12 s of dev00 (one speaker) and of trn06 (two) go in interleaved 100 ms blocks into one segmentation
node that batches windows of both streams in one model call, then into one diarization node. Half-way both nodes
are rebuilt from their checkpointed state (msgpack round trip, as the runtime does after a crash).

Guards: per stream, the turns of the RTTM the diarization node appended as they closed equal `diarize_file` on
that excerpt alone (same labels, boundaries within one 20 ms frame): state never leaks between streams, batching
and restarts change nothing; and model calls were shared (a single `process` call returned windows of both
streams) and nothing compiled after `setup`.
"""

from __future__ import annotations

import soundfile as sf

from nodes.diarization.files import diarize_file
from nodes.diarization.node import DiarizationNode, DiarizationNodeConfig
from nodes.diarization.pipeline import DiarizationConfig
from nodes.diarization.windows import _pool, _step_frames
from nodes.segmentation.node import SegmentationConfig, SegmentationNode
from nodes.segmentation.segment import _forward
from stream.message import Message
from stream.rttm import read_rttm
from stream.runner import load_state, save_state

CLIPS = ("dev00", "trn06")
SECONDS = 12.0
BLOCK = 1600  # samples: 100 ms
FRAME = 0.02  # s


async def restarted(node, cls, tmp_path):
    """A fresh node of `cls` built from `node`'s checkpoint, as after a crash."""
    save_state(tmp_path / "state.msgpack", node.state_dict())
    fresh = cls(node.config, node.name)
    fresh.load_state_dict(load_state(tmp_path / "state.msgpack"))
    await fresh.setup()
    return fresh


async def test_two_streams_batched_and_restarted_equal_file_mode(tmp_path, data):
    audio = {c: sf.read(data / "diarization" / "ami" / f"{c}.flac", dtype="float32")[0][: round(SECONDS * 16000)]
             for c in CLIPS}
    seg = SegmentationNode(SegmentationConfig(max_batch=2, max_wait_ms=1e6))  # wait until both streams have one
    dia = DiarizationNode(DiarizationNodeConfig(rttm_dir=str(tmp_path / "rttm")))
    await seg.setup()
    await dia.setup()
    compiled = _forward._cache_size(), _step_frames._cache_size(), _pool._cache_size()
    shared = False
    blocks = len(audio[CLIPS[0]]) // BLOCK
    for b in range(blocks):
        if b == blocks // 2:
            seg, dia = await restarted(seg, SegmentationNode, tmp_path), await restarted(dia, DiarizationNode, tmp_path)
        for clip in CLIPS:
            pcm = audio[clip][b * BLOCK:(b + 1) * BLOCK, None]
            msg = Message.new(clip, "pcm", pcm, sr=16000, t_capture_ns=b * 100_000_000, t_wall=b * 0.1)
            windows = await seg.process(msg)
            shared |= len({w.header.stream for w in windows}) == 2
            for window in windows:
                await dia.process(window)
    for window in await seg.close():
        await dia.process(window)
    await dia.close()
    assert shared
    assert (_forward._cache_size(), _step_frames._cache_size(), _pool._cache_size()) == compiled  # setup compiled every shape used

    speakers = {}
    for clip in CLIPS:
        sf.write(tmp_path / f"{clip}.wav", audio[clip], 16000, subtype="FLOAT")
        alone = diarize_file(tmp_path / f"{clip}.wav", seg.analyzer, DiarizationConfig()).turns
        [rttm] = (tmp_path / "rttm").glob(f"{clip}-*.rttm")
        live = read_rttm(rttm)[clip]
        speakers[clip] = len({t.label for t in alone})
        assert len(live) == len(alone)
        for a, b in zip(live, alone):
            assert a.label == b.label and abs(a.start - b.start) <= FRAME and abs(a.end - b.end) <= FRAME, (a, b)
    assert speakers == {"dev00": 1, "trn06": 2}  # SPEAKER_1 of dev00 first talks at 14 s
