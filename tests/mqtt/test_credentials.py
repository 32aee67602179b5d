"""A password-protected broker: wrong credentials are a clear error that stops the graph (no silent sinkless run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.broker import Broker, BrokerError
from stream.errors import ConfigError
from stream.sinks.mqtt import MqttConfig, MqttSink
from stream.sinks.node import SinksNode


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


async def test_refused_credentials_stop_the_sinks_node_at_setup(tmp_path: Path) -> None:
    """A graph must not run on without its MQTT sink (issue #22, bug 7): setup fails with the broker's reason,
    which stops the graph with that one line instead of exit 0 and no events on the broker."""
    with Broker(users={"stream": "right"}) as broker:
        node = SinksNode.from_table({"sinks": [
            {"kind": "mqtt", "url": broker.url, "username": "stream", "password": "wrong", "stream": "door"},
            {"kind": "jsonl", "path": str(tmp_path / "events.jsonl")},
        ]}, name="sinks")
        with pytest.raises(ConfigError, match=r"sink mqtt cannot start .*refused .*username/password"):
            await node.setup()
