"""What the network capture sources add: stamp error and delivery latency, through ffmpeg and through a WebSocket.

    .venv/bin/python bench/network_latency.py [--seconds 20]

ffmpeg: a local HTTP server (tests/capture/livehttp.py) serves a live 16-bit 16 kHz WAV stream whose every sample
says when it was made; the capture node (source "url") reads it. WebSocket: a client sends 20 ms float32 frames of
the same kind of signal as it is made. Per block, steady state (after the first 2 s):
  stamp error   = the block's t_capture - when its first sample was made (0 = exact; > 0 = stamped late)
  delivery      = when the block left the source - when its last sample was made (what the source adds to latency)
and, for ffmpeg, the time from the start of the node to its first block (ffmpeg probing the stream).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nodes.capture.clock import NS  # noqa: E402
from nodes.capture.node import CaptureNode  # noqa: E402
from tests.capture.livehttp import PacedWavServer, coded, index_of  # noqa: E402

RATE, BLOCK = 16_000, 320


def made_ns(samples: np.ndarray, stamp_ns: int, epoch_ns: int) -> int:
    """When the first of `samples` (live signal) was made: the last time before the stamp it had that code."""
    latest = (stamp_ns - epoch_ns) * RATE // NS
    first = latest - (latest - int(index_of(samples[:1])[0])) % 65536
    return epoch_ns + first * NS // RATE


async def run(node: CaptureNode, seconds: float, epoch_ns: int, start_ns: int) -> dict[str, float]:
    await node.setup()
    errors, delivery, first_out = [], [], None
    async with contextlib.aclosing(node.produce()) as messages:
        async for msg in messages:
            now = time.monotonic_ns()
            first_out = first_out or now
            made = made_ns(msg.data[:, 0], msg.header.t_capture_ns, epoch_ns)
            if now - first_out > 2 * NS:
                errors.append((msg.header.t_capture_ns - made) / 1e6)
                delivery.append((now - made - BLOCK * NS // RATE) / 1e6)
            if now - first_out > (seconds + 2) * NS:
                break
    return {"first block after (s)": (first_out - start_ns) / NS,
            "stamp error min/max (ms)": (np.min(errors), np.max(errors)),
            "delivery p50/p95/max (ms)": (np.median(delivery), np.percentile(delivery, 95), np.max(delivery))}


async def bench_ffmpeg(seconds: float) -> dict[str, float]:
    server = PacedWavServer(RATE)
    await server.start()
    node = CaptureNode.from_table({"source": "url", "url": server.url, "stream": "cam"}, "cam")
    try:
        return await run(node, seconds, server.epoch_ns, time.monotonic_ns())
    finally:
        await server.stop()


async def bench_websocket(seconds: float) -> dict[str, float]:
    from websockets.asyncio.client import connect

    node = CaptureNode.from_table({"source": "websocket", "listen": "127.0.0.1:0", "stream": "ws"}, "ws")
    epoch = time.monotonic_ns()

    async def client() -> None:
        await asyncio.sleep(0.2)
        async with connect(f"ws://127.0.0.1:{node.source.port}") as ws:
            await ws.recv()
            sent = (time.monotonic_ns() - epoch) * RATE // NS
            while True:
                await asyncio.sleep(0.02)
                upto = (time.monotonic_ns() - epoch) * RATE // NS
                await ws.send((coded(sent, upto - sent) / 32768).astype("<f4").tobytes())
                sent = upto

    sender = asyncio.ensure_future(client())
    try:
        return await run(node, seconds, epoch, time.monotonic_ns())
    finally:
        sender.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    for name, bench in (("ffmpeg (HTTP WAV)", bench_ffmpeg), ("WebSocket (f32le)", bench_websocket)):
        result = asyncio.run(bench(args.seconds))
        print(name, "  ".join(f"{k}: {np.round(v, 2)}" for k, v in result.items()))


if __name__ == "__main__":
    main()
