"""A graph stand-in for the last-will test: an MqttSink in its own process, one level event per 50 ms.

    python tests/mqtt/publisher.py mqtt://127.0.0.1:PORT STREAM_ID
"""

from __future__ import annotations

import asyncio
import sys
import time

from stream.sinks.mqtt import MqttConfig, MqttSink


async def main(url: str, stream: str) -> None:
    sink = MqttSink(MqttConfig(url=url, stream=stream, discovery=False))
    await sink.start()
    seq = 0
    while True:
        now = time.time()
        await sink.publish({"type": "level", "stream": stream, "seq": seq, "t_audio": seq * 0.05,
                            "t_capture": now, "t_publish": now, "rms_db": -30.0})
        seq += 1
        await asyncio.sleep(0.05)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
