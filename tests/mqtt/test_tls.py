"""mqtts://: the sink verifies the broker against our CA and presents its own certificate (mutual TLS)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from stream.broker import Broker, BrokerError
from stream.sinks.mqtt import MqttConfig, MqttSink
from stream.sinks.mqtt_listen import events


async def test_mutual_tls_delivers_and_a_wrong_ca_is_named(certificates: dict[str, Path]) -> None:
    c = {name: str(path) for name, path in certificates.items()}
    tls = (certificates["ca.pem"], certificates["server.pem"], certificates["server.key"])
    with Broker(tls=tls, require_certificate=True) as broker:
        assert broker.url.startswith("mqtts://")
        config = MqttConfig(url=broker.url, stream="tls", discovery=False, ca_file=c["ca.pem"],
                            cert_file=c["client.pem"], key_file=c["client.key"])
        got: list[dict] = []

        async def listen() -> None:
            async for received in events(broker.url, config=config):
                got.append(received)

        listener = asyncio.create_task(listen())
        sink = MqttSink(config)
        await sink.start()
        assert sink.connected
        now = time.time()
        event = {"type": "level", "stream": "tls", "t_audio": 0.0, "t_capture": now, "t_publish": now,
                 "duration": 0.1, "rms_dbfs": -40.0, "peak_dbfs": -30.0}
        for _ in range(200):  # until the listener has subscribed and received one over TLS
            await sink.publish(event)
            await asyncio.sleep(0.05)
            if got:
                break
        listener.cancel()
        await sink.stop()
        assert got[0] == event

        strange = MqttSink(MqttConfig(url=broker.url, stream="tls", discovery=False, ca_file=c["stranger.pem"]))
        with pytest.raises(BrokerError, match=rf"{broker.url}: TLS failed .*CERTIFICATE_VERIFY_FAILED"):
            await strange.start()
        await strange.stop()
