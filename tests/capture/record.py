"""Run the capture node on an input device in this process and save what it captured (for test_pulse).

A separate process because PortAudio enumerates devices once per process, when it initialises: the sound
server and `PULSE_SOURCE` must exist before that, as they do for a capture node the graph starts.

    python tests/capture/record.py DEVICE SECONDS OUT.npz
prints "capturing" once the first block is in, then records SECONDS of 16 kHz mono audio.
"""

from __future__ import annotations

import asyncio
import sys

import numpy as np

from nodes.capture.node import CaptureNode


async def record(device: str, seconds: float, out: str) -> None:
    node = CaptureNode.from_table({"source": "device", "device": device, "rate": 16_000, "block_ms": 20.0}, "mic")
    await node.setup()
    blocks, stamps = [], []
    messages = node.produce()
    async for msg in messages:
        if not blocks:
            print("capturing", flush=True)
        blocks.append(msg.data[:, 0])
        stamps.append(msg.header.t_capture_ns)
        if len(blocks) * 0.020 >= seconds:
            break
    await messages.aclose()
    np.savez(
        out, samples=np.concatenate(blocks), stamps=np.array(stamps, np.int64), block=len(blocks[0]),
        overflows=node.source.overflows, dropped=node.source.dropped,
    )


if __name__ == "__main__":
    asyncio.run(record(sys.argv[1], float(sys.argv[2]), sys.argv[3]))
