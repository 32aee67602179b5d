"""File mode: run the beat tracker over a recording in live-sized blocks, as the node does, on a simulated clock.

A beat's latency is how much audio had been heard when it was emitted, minus its time (negative: predicted
ahead); with 20 ms blocks that is what the live node's `stream_event_latency_seconds{event="beat"}` shows, less
the transport.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nodes.beats.onset import RATE
from nodes.beats.tracker import Beat, BeatTracker, TempoChange, TrackerConfig
from nodes.capture.files import read_blocks
from stream.errors import AudioError
from stream.rttm import FormatError

BLOCK_S = 0.02  # s per block pushed: the capture node's default block


@dataclass(frozen=True)
class FileBeats:
    duration: float  # s of audio
    beats: list[Beat]
    latencies: np.ndarray  # s from each beat to its emission (negative = before the beat)
    tempi: list[TempoChange]
    activation: np.ndarray  # what the decoder saw, one value per frame
    fps: float  # frames per second of `activation`
    elapsed: float  # s of wall time
    cpu: float  # s of CPU time of this process (the speed measure on a shared machine)


def track_file(path: Path, config: TrackerConfig, params=None,
               progress: Callable[[float], None] | None = None, rate: int = RATE) -> FileBeats:
    """Beats of a recording, decoded at `rate` and pushed in 20 ms blocks. At the front end's own rate (the
    default) nothing is resampled on the way; another rate goes through the tracker's streaming resampler, as a
    live graph's audio does (the meeting graphs run at 16 kHz)."""
    start, start_cpu = time.perf_counter(), time.process_time()
    tracker = BeatTracker(config, rate, params)
    block = round(BLOCK_S * rate)
    beats: list[Beat] = []
    latencies: list[float] = []
    tempi: list[TempoChange] = []
    activation: list[np.ndarray] = []
    heard = 0
    pending = np.zeros(0, np.float32)
    for chunk in read_blocks(path, rate):
        pending = np.concatenate([pending, chunk])
        while len(pending) >= block:
            heard += block
            b, t = tracker.push(pending[:block])
            pending = pending[block:]
            beats += b
            latencies += [heard / rate - x.time for x in b]
            tempi += t
            activation.append(tracker.observations)
        if progress:
            progress(heard / rate)
    heard += len(pending)
    b, t = tracker.push(pending, last=True)
    beats, tempi = beats + b, tempi + t
    latencies += [heard / rate - x.time for x in b]
    activation.append(tracker.observations)
    if heard == 0:
        raise AudioError("the file has no samples")
    return FileBeats(heard / rate, beats, np.asarray(latencies), tempi, np.concatenate(activation),
                     tracker.frontend.config.fps, time.perf_counter() - start, time.process_time() - start_cpu)


def write_beats(path: Path, beats: list[Beat]) -> None:
    """One beat per line: time in s, and its place in the bar (1 = downbeat) when known."""
    path.write_text("".join(f"{b.time:.3f}\t{b.position}\n" if b.position else f"{b.time:.3f}\n" for b in beats))


def read_beats(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(times, positions; 0 where unknown) of a .beats file: `time [position]` per line, tabs or spaces."""
    times, positions = [], []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            times.append(float(fields[0]))
            positions.append(int(float(fields[1])) if len(fields) > 1 else 0)
        except ValueError:
            raise FormatError(f"{path}:{n}: expected 'time [beat in bar]', got {line!r}") from None
    return np.asarray(times), np.asarray(positions, int)
