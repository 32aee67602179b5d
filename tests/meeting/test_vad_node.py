"""The VAD node bare: two 30 s AMI streams interleaved in 20 ms blocks, the node rebuilt from its checkpoint
half-way. Guards: per stream its "vad" events pair into exactly the speech regions of the whole-file mode
(`detect_speech`, boundaries within one 32 ms chunk), events are stamped with the capture time of their audio
and match the JSON Schema.
"""

from __future__ import annotations

import jsonschema
import soundfile as sf

from nodes.vad.detector import CHUNK_SECONDS, detect_speech
from nodes.vad.node import VadNode
from stream.message import Message
from stream.models import load_params
from stream.runner import load_state, save_state
from stream.schemas import schema

CLIPS = ("dev00", "trn00")
BLOCK = 320  # samples: 20 ms


async def test_two_streams_restarted_equal_whole_file(tmp_path, data):
    audio = {c: sf.read(data / "diarization" / "ami" / f"{c}.flac", dtype="float32")[0] for c in CLIPS}
    node = VadNode()
    await node.setup()
    events = []
    blocks = len(audio[CLIPS[0]]) // BLOCK
    for b in range(blocks):
        if b == blocks // 2:
            save_state(tmp_path / "vad.msgpack", node.state_dict())
            node = VadNode()
            node.load_state_dict(load_state(tmp_path / "vad.msgpack"))
            await node.setup()
        for k, clip in enumerate(CLIPS):
            t_ns = (k * 1000 + b * 0.02) * 1e9  # streams start 1000 s apart on the capture clock
            msg = Message.new(clip, "pcm", audio[clip][b * BLOCK:(b + 1) * BLOCK, None], sr=16000,
                              t_capture_ns=round(t_ns), t_wall=t_ns / 1e9)
            events += [e.header for e in await node.process(msg)]
    events += [e.header for e in await node.close()]

    params = load_params("silero-vad")
    for k, clip in enumerate(CLIPS):
        mine = [h.meta for h in events if h.stream == clip]
        for h in events:
            if h.stream == clip:
                assert abs(h.t_capture_ns / 1e9 - (k * 1000 + h.meta["t_audio"])) < 1e-6
                jsonschema.validate(h.meta, schema("vad"))
        assert [e["speech"] for e in mine] == [True, False] * (len(mine) // 2)
        regions = list(zip([e["t_audio"] for e in mine[::2]], [e["t_audio"] for e in mine[1::2]]))
        _, reference = detect_speech(params, audio[clip][: blocks * BLOCK])
        assert len(regions) == len(reference) >= 3
        for (s, e), (rs, re) in zip(regions, reference):
            assert abs(s - rs) <= CHUNK_SECONDS and abs(e - re) <= CHUNK_SECONDS
