"""A password-protected broker: wrong credentials are a clear error, and the graph's other sinks go on."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import REGISTRY

from stream.broker import Broker, BrokerError
from stream.message import Message
from stream.sinks.mqtt import MqttConfig, MqttSink
from stream.sinks.node import SinksNode


def level_message(seq: int) -> Message:
    pcm = Message.new("door", "pcm", np.zeros(320, np.float32), sr=16000, t_capture_ns=time.monotonic_ns(),
                      t_wall=time.time(), seq=seq)
    return Message.event(pcm, {"type": "level", "stream": "door", "t_audio": seq * 0.02, "t_capture": time.time(),
                               "duration": 0.02, "rms_dbfs": -40.0, "peak_dbfs": -30.0})


async def test_wrong_password_names_broker_and_cause() -> None:
    with Broker(users={"stream": "right"}) as broker:
        sink = MqttSink(MqttConfig(url=f"mqtt://stream:wrong@127.0.0.1:{broker.port}", stream="door"))
        with pytest.raises(BrokerError, match=rf"mqtt://127\.0\.0\.1:{broker.port} refused .*username/password"):
            await sink.start()
        with pytest.raises(BrokerError, match="refused"):  # every later event says so too, for the error count
            await sink.publish({"type": "level", "stream": "door"})
        await sink.stop()
        right = MqttSink(MqttConfig(url=f"mqtt://stream:right@127.0.0.1:{broker.port}", stream="door"))
        await right.start()
        assert right.connected
        await right.stop()


async def test_other_sinks_keep_running_when_mqtt_is_refused(tmp_path: Path) -> None:
    with Broker(users={"stream": "right"}) as broker:
        events = tmp_path / "events.jsonl"
        node = SinksNode.from_table({"sinks": [
            {"kind": "mqtt", "url": broker.url, "username": "stream", "password": "wrong", "stream": "door"},
            {"kind": "jsonl", "path": str(events)},
        ]}, name="sinks")
        errors = REGISTRY.get_sample_value("stream_sink_errors_total", {"sink": "mqtt"}) or 0.0
        await node.setup()
        for seq in range(10):
            await node.process(level_message(seq), port="loudness")
        await node.close()
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert [e["t_audio"] for e in lines] == pytest.approx([seq * 0.02 for seq in range(10)])
    # start() and each of the 10 events counted as the mqtt sink's errors
    assert REGISTRY.get_sample_value("stream_sink_errors_total", {"sink": "mqtt"}) - errors == 11
