"""Sinks: a failing sink is counted and the others still get every event; zmq_pub topics; schemas are valid."""

from __future__ import annotations

import json
import time

import jsonschema
import numpy as np
import pytest
import zmq
import zmq.asyncio
from prometheus_client import REGISTRY

from stream.message import Message
from stream.schemas import schema
from stream.sinks.base import Sink
from stream.sinks.console import format_event
from stream.sinks.node import SinksConfig, SinksNode


class _Broken(Sink):
    name = "broken-test"

    async def publish(self, event):
        raise OSError("disk full")


def _level(i: int) -> Message:
    pcm = Message.new("mic0", "pcm", np.zeros(320, np.float32), sr=16000, t_capture_ns=i, t_wall=100.0 + i)
    return Message.event(pcm, {"type": "level", "t_audio": 0.02 * i, "duration": 0.02, "rms_dbfs": -20.0,
                               "peak_dbfs": -6.0})


async def test_failing_sink_is_counted_and_others_get_every_event(tmp_path, capsys):
    node = SinksNode(SinksConfig(sinks=({"kind": "jsonl", "path": str(tmp_path / "e.jsonl")},
                                        {"kind": "console", "every": 2})), name="sinks-test")
    node.sinks.insert(0, _Broken(None))
    await node.setup()
    before = REGISTRY.get_sample_value("stream_sink_errors_total", {"sink": "broken-test"}) or 0.0
    for i in range(10):
        assert await node.process(_level(i), "loudness") == []
    await node.close()
    events = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert len(events) == 10
    assert REGISTRY.get_sample_value("stream_sink_errors_total", {"sink": "broken-test"}) - before == 10
    for event in events:
        jsonschema.validate(event, schema("level"))
        assert event["node"] == "loudness" and event["stream"] == "mic0"
    assert len(capsys.readouterr().out.splitlines()) == 5  # console prints one in `every` = 2


async def test_zmq_pub_topics_are_type_and_stream(tmp_path):
    endpoint = f"ipc://{tmp_path / 'pub.sock'}"
    node = SinksNode(SinksConfig(sinks=({"kind": "zmq_pub", "endpoint": endpoint},)), name="sinks-zmq")
    await node.setup()
    ctx = zmq.asyncio.Context.instance()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"level/mic0")
    sub.connect(endpoint)
    received = []
    for i in range(200):  # PUB/SUB joins asynchronously: publish until the subscriber has some
        await node.process(_level(i), "loudness")
        if await sub.poll(5):
            received.append(await sub.recv_multipart())
        if len(received) >= 3:
            break
    await node.close()
    sub.close(linger=0)
    assert len(received) == 3
    for topic, payload in received:
        assert topic == b"level/mic0"
        jsonschema.validate(json.loads(payload), schema("level"))


@pytest.mark.parametrize("event_type", ["level", "speaker.turn", "speaker.active"])
def test_schemas_are_valid_and_require_the_common_fields(event_type):
    s = schema(event_type)
    jsonschema.Draft202012Validator.check_schema(s)
    assert {"type", "stream", "t_audio", "t_capture", "t_publish"} <= set(s["required"])
    example = {"type": event_type, "stream": "mic0", "t_audio": 1.0, "t_capture": 10.0, "t_publish": 10.2,
               "label": "spk0", "confidence": 0.9, "start": 1.0, "stop": 2.0, "active": True,
               "duration": 0.1, "rms_dbfs": -20.0, "peak_dbfs": -3.0}
    jsonschema.validate(example, s)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**example, "t_audio": -1.0}, s)


def test_console_line_shows_time_type_fields_and_latency():
    line = format_event({"type": "level", "stream": "mic0", "t_audio": 1.5, "t_capture": 10.0, "t_publish": 10.25,
                         "latency": 0.25, "rms_dbfs": -20.0})
    assert line.split() == ["1.500", "s", "mic0", "level", "rms_dbfs=-20", "(latency", "250", "ms)"]


async def test_console_latency_is_the_metrics_figure(capsys):
    """Issue #21, bugs 3 and 4: a turn's console latency counts from its end (as stream_event_latency_seconds),
    not from its start; and it is measured on the monotonic clock, so a wall clock a few ms off (the last event
    of a file) never makes it negative."""
    node = SinksNode(SinksConfig(sinks=({"kind": "console"},)))
    await node.setup()
    now_ns, now = time.monotonic_ns(), time.time()
    turn = {"type": "speaker.turn", "t_audio": 6.5, "t_capture": now - 7.36, "label": "SPEAKER_0",
            "confidence": 0.9, "start": 6.5, "stop": 13.56}
    level = {"type": "level", "t_audio": 20.0, "t_capture": now + 0.005, "rms_dbfs": -20.0, "peak_dbfs": -3.0}
    for ago_s, event in ((0.3, turn), (0.01, level)):
        await node.process(Message.new("mic0", "event", np.zeros(0, np.uint8), sr=0,
                                       t_capture_ns=now_ns - round(ago_s * 1e9), t_wall=event["t_capture"],
                                       meta=event), "diarization")
    lines = capsys.readouterr().out.splitlines()
    latencies = [float(line.split("(latency ")[1].split()[0]) for line in lines]
    assert 300 <= latencies[0] < 1000 and 10 <= latencies[1] < 500, lines
