"""File mode for chords: drive the live `ChordsNode` over a recording on a simulated clock, write/read `.lab` files.

The node sees the same pcm messages the capture node would send (stamps = sample offsets), so `stream chords`
writes exactly the chord changes the live graph would announce for that audio.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nodes.capture.files import read_blocks
from nodes.chords.node import ChordsNode, ChordsNodeConfig
from stream.errors import AudioError
from stream.message import Message

FILE_RATE = 22050  # Hz the file is read at (the tracker analyses at 11.025 kHz)
BLOCK_S = 1.0  # seconds of audio per pcm message


@dataclass(frozen=True)
class Segment:
    start: float  # s
    end: float  # s
    label: str  # Harte syntax


@dataclass(frozen=True)
class FileChords:
    segments: list[Segment]
    duration: float  # s of audio
    elapsed: float  # s of wall time


def segments_from_changes(changes: list[tuple[float, str]], duration: float) -> list[Segment]:
    """Contiguous segments from 0 to `duration` out of (time, label) changes in time order (N before the first)."""
    times = [0.0] + [min(max(t, 0.0), duration) for t, _ in changes] + [duration]
    labels = ["N"] + [label for _, label in changes]
    segments = [Segment(a, b, label) for a, b, label in zip(times[:-1], times[1:], labels) if b > a]
    merged: list[Segment] = []
    for seg in segments:
        if merged and merged[-1].label == seg.label:
            merged[-1] = Segment(merged[-1].start, seg.end, seg.label)
        else:
            merged.append(seg)
    return merged


def chords_file(path: Path, config: ChordsNodeConfig | None = None,
                progress: Callable[[float], None] | None = None) -> FileChords:
    """Chord segments of one audio file, through the live node's code."""
    start = time.perf_counter()
    changes, duration = asyncio.run(_run_node(ChordsNode(config, name="chords"), path, progress))
    return FileChords(segments_from_changes(changes, duration), duration, time.perf_counter() - start)


async def _run_node(node: ChordsNode, path: Path,
                    progress: Callable[[float], None] | None) -> tuple[list[tuple[float, str]], float]:
    """(chord changes as (time, label), duration s): the file as 1 s pcm messages stamped with sample offsets."""
    block = round(BLOCK_S * FILE_RATE)
    events: list[Message] = []
    frames = 0
    for chunk in read_blocks(path, FILE_RATE):
        for first in range(0, len(chunk), block):
            samples = np.ascontiguousarray(chunk[first:first + block])
            t_ns = frames * 1_000_000_000 // FILE_RATE
            msg = Message.new(path.stem, "pcm", samples, sr=FILE_RATE, t_capture_ns=t_ns, t_wall=t_ns / 1e9)
            events += await node.process(msg)
            frames += len(samples)
        if progress:
            progress(frames / FILE_RATE)
    if frames == 0:
        raise AudioError("the file has no samples")
    events += await node.close()
    return [(e.header.meta["t_audio"], e.header.meta["chord"]) for e in events], frames / FILE_RATE


def write_lab(path: Path, segments: list[Segment]) -> None:
    """`start end label` per line (seconds, tab-separated): mir_eval's and Isophonics' .lab format."""
    path.write_text("".join(f"{s.start:.3f}\t{s.end:.3f}\t{s.label}\n" for s in segments))
