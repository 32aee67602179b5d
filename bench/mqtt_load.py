"""MQTT sink load on localhost: sustained events/s into mosquitto, and latency from publish() to a subscriber.

    .venv/bin/python bench/mqtt_load.py [--events 20000] [--rates 100,1000] [--seconds 10]

Throughput: `--events` level events are handed to the sink as fast as the loop allows; events/s is counted
until the broker acknowledged them all, and until a subscriber (its own process) received them all. Latency: at each fixed rate for `--seconds`, the time from
`sink.publish(event)` to the subscriber's receipt (same clock, one machine): what a user of the events sees,
and an upper bound of the sink's own publish -> PUBACK latency. QoS 1, embedded mosquitto, in-memory buffer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import time
from multiprocessing.connection import Connection

import numpy as np

from stream.broker import Broker
from stream.sinks.mqtt import MqttConfig, MqttSink

TOPIC = "stream/bench/level"


def subscriber(port: int, expected: int, pipe: Connection) -> None:
    """Child process: receive `expected` events, send back [(seq, t_receive)]."""
    import aiomqtt

    async def run() -> list[tuple[int, float]]:
        got: list[tuple[int, float]] = []
        async with aiomqtt.Client("127.0.0.1", port, max_queued_incoming_messages=0) as client:
            await client.subscribe(TOPIC, qos=1)
            pipe.send("ready")
            messages = aiter(client.messages)
            while len(got) < expected:
                try:
                    message = await asyncio.wait_for(anext(messages), 10.0)
                except asyncio.TimeoutError:
                    break  # the broker dropped some: the caller reports them
                got.append((json.loads(message.payload)["seq"], time.time()))
        return got

    pipe.send(asyncio.run(run()))


def level(seq: int) -> dict:
    now = time.time()
    return {"type": "level", "stream": "bench", "seq": seq, "t_audio": seq * 0.1, "t_capture": now,
            "t_publish": now, "node": "loudness", "duration": 0.1, "rms_dbfs": -23.4, "peak_dbfs": -6.1}


async def phase(port: int, url: str, count: int, rate: float | None) -> tuple[float, float, float, list[float]]:
    """Publish `count` events (at `rate`/s, or flat out).

    Returns events/s acknowledged by the broker, events/s received by the subscriber, CPU seconds of this process
    (the sink) per event, and each event's latency (s).
    """
    ctx = mp.get_context("spawn")
    here, there = ctx.Pipe()
    child = ctx.Process(target=subscriber, args=(port, count, there))
    child.start()
    assert await asyncio.to_thread(here.recv) == "ready"
    sink = MqttSink(MqttConfig(url=url, stream="bench", discovery=False, buffer_size=count + 1))
    await sink.start()
    sent: dict[int, float] = {}
    cpu0 = time.process_time()
    t0 = time.time()
    for seq in range(count):
        event = level(seq)
        sent[seq] = event["t_publish"]
        await sink.publish(event)
        if rate:
            await asyncio.sleep(max(0.0, t0 + (seq + 1) / rate - time.time()))
        elif seq % 200 == 0:
            await asyncio.sleep(0)  # let the sender run
    while sink.buffered:
        await asyncio.sleep(0.001)
    acked = time.time() - t0
    cpu = (time.process_time() - cpu0) / count
    got = await asyncio.to_thread(here.recv)
    assert [s for s, _ in got] == list(range(count)), f"subscriber got {len(got)} of {count} events"
    received = max(t for _, t in got) - t0
    await sink.stop()
    child.join()
    return count / acked, count / received, cpu, [t - sent[s] for s, t in got]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rates", default="100,1000")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with Broker() as broker:
        acked, received, cpu, _ = await phase(broker.port, broker.url, args.events, None)
        print(f"flat out, {args.events} events: {acked:,.0f} events/s acknowledged by the broker (QoS 1), "
              f"{received:,.0f} events/s received by one QoS-1 subscriber; sink CPU {1e6 * cpu:.0f} us/event")
        print("| rate (events/s) | events | p50 (ms) | p99 (ms) | max (ms) |")
        print("|---|---|---|---|---|")
        for target in map(float, args.rates.split(",")):
            n = int(target * args.seconds)
            _, _, _, lat = await phase(broker.port, broker.url, n, target)
            p50, p99, worst = (1e3 * np.percentile(lat, q) for q in (50, 99, 100))
            print(f"| {target:,.0f} | {n} | {p50:.2f} | {p99:.2f} | {worst:.2f} |")


if __name__ == "__main__":
    asyncio.run(main())
