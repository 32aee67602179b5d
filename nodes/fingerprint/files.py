"""File mode for fingerprints: hash whole files for the index, and run the live node over files to match them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nodes.capture.files import read_blocks
from nodes.fingerprint.extract import FingerprintExtractor
from nodes.fingerprint.hashes import RATE, Hashes
from nodes.fingerprint.index import FingerprintIndex
from nodes.fingerprint.node import FingerprintConfig, FingerprintNode
from stream.errors import AudioError
from stream.message import Message

BLOCK_S = 0.5  # seconds of audio per pcm message in `match_file`


def file_hashes(path: Path) -> tuple[Hashes, float]:
    """(every hash of the file, duration s), through the same streaming extractor as the live node."""
    extractor = FingerprintExtractor(RATE)
    parts, frames = [], 0
    for block in read_blocks(path, RATE):
        parts.append(extractor.push(block))
        frames += len(block)
    if frames == 0:
        raise AudioError("the file has no samples")
    parts.append(extractor.flush())
    return Hashes.concat(parts), frames / RATE


@dataclass(frozen=True)
class FileMatches:
    events: list[dict[str, Any]]  # the fingerprint.match events the live node announces for this audio
    duration: float  # s
    elapsed: float  # s of wall time


def match_file(path: Path, index: FingerprintIndex, config: FingerprintConfig | None = None,
               progress: Callable[[float], None] | None = None) -> FileMatches:
    """Drive the live node over a file on a simulated clock (0.5 s pcm messages stamped with sample offsets)."""
    start = time.perf_counter()
    node = FingerprintNode(config, name="fingerprint", index=index)

    async def run() -> tuple[list[Message], int]:
        events, frames, block = [], 0, round(BLOCK_S * RATE)
        for chunk in read_blocks(path, RATE):
            for first in range(0, len(chunk), block):
                samples = np.ascontiguousarray(chunk[first:first + block])
                t_ns = frames * 1_000_000_000 // RATE
                events += await node.process(Message.new(path.stem, "pcm", samples, sr=RATE, t_capture_ns=t_ns,
                                                         t_wall=t_ns / 1e9))
                frames += len(samples)
            if progress:
                progress(frames / RATE)
        if frames == 0:
            raise AudioError("the file has no samples")
        return events + await node.close(), frames

    events, frames = asyncio.run(run())
    return FileMatches([e.header.meta for e in events], frames / RATE, time.perf_counter() - start)
