"""Loudness node used bare: dBFS numbers, one event per `every` blocks, t_audio kept across a state round trip."""

from __future__ import annotations

import jsonschema
import numpy as np
import pytest

from nodes.loudness.node import LoudnessConfig, LoudnessNode, level_dbfs
from stream.errors import MessageError
from stream.message import Message
from stream.schemas import schema


def _block(i: int, amplitude: float = 1.0) -> Message:
    t = (np.arange(320) + 320 * i) / 16000
    pcm = (amplitude * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)[:, None]
    t_ns = 5_000_000_000 + i * 20_000_000
    return Message.new("mic0", "pcm", pcm, sr=16000, t_capture_ns=t_ns, t_wall=100.0 + i * 0.02)


def test_full_scale_sine_is_minus_3_dbfs_rms_and_0_peak():
    rms, peak = level_dbfs(_block(0).data, -120.0)
    assert rms == pytest.approx(-3.01, abs=0.01) and peak == pytest.approx(0.0, abs=0.01)
    assert level_dbfs(np.zeros(10), -100.0) == (-100.0, -100.0)


async def test_events_every_n_blocks_and_t_audio_survives_a_restart():
    node = LoudnessNode(LoudnessConfig(every=2), name="loud")
    events = [e for i in range(4) for e in await node.process(_block(i, 0.5))]
    assert [e.header.meta["t_audio"] for e in events] == [0.0, 0.04]
    assert events[0].header.meta["rms_dbfs"] == pytest.approx(-9.03, abs=0.01)
    restarted = LoudnessNode(LoudnessConfig(every=2), name="loud")
    restarted.load_state_dict(node.state_dict())
    later = [e for i in (10, 11) for e in await restarted.process(_block(i))]
    assert [e.header.meta["t_audio"] for e in later] == [pytest.approx(0.2)]
    event = {**later[0].header.meta, "t_publish": 101.0}
    jsonschema.validate(event, schema("level"))


async def test_non_float32_pcm_is_a_message_error():
    bad = Message.new("mic0", "pcm", np.zeros(320, np.int16), sr=16000, t_capture_ns=0, t_wall=0.0)
    with pytest.raises(MessageError, match="float32"):
        await LoudnessNode().process(bad)
