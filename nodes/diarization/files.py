"""File mode: read a recording block by block at 16 kHz mono and run the online chain over it, batching models.

Memory stays flat for hours of audio: the file is read in blocks (`nodes.capture.files`) and only two batches of
windows are held at once (plus a few kB per window kept for the refinement pass).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nodes.capture.files import read_blocks
from nodes.diarization.pipeline import SAMPLE_RATE, DiarizationConfig, OnlineDiarizer, WindowBuffer
from nodes.diarization.windows import WindowAnalyzer
from stream.allocator import release_freed_memory
from stream.errors import AudioError, ConfigError
from stream.rttm import Turn

@dataclass(frozen=True)
class FileResult:
    duration: float  # s of audio
    turns: list[Turn]  # online output (what the live graph emits)
    refined: list[Turn] | None  # refinement pass, when asked for
    elapsed: float  # s of wall time

    @property
    def speakers(self) -> int:
        return len({t.label for t in self.turns})

    @property
    def speech(self) -> float:
        """Seconds with at least one speaker (overlaps counted once)."""
        edges = sorted((t.start, t.end) for t in self.turns)
        total, reach = 0.0, 0.0
        for s, e in edges:
            total += max(0.0, e - max(s, reach))
            reach = max(reach, e)
        return total


def diarize_file(path: Path, analyzer: WindowAnalyzer, config: DiarizationConfig,
                 enrolled: dict[str, np.ndarray] | None = None, refine: bool = False, batch: int = 8,
                 progress: Callable[[float], None] | None = None) -> FileResult:
    """Run the online chain over one file (models batched ``batch`` windows at a time); thread-safe: `stream
    diarize` runs two files at a time with one analyzer."""
    return diarize_file_at(path, analyzer, [config], enrolled, refine, batch, progress)[0]


def diarize_file_at(path: Path, analyzer: WindowAnalyzer, configs: list[DiarizationConfig],
                    enrolled: dict[str, np.ndarray] | None = None, refine: bool = False, batch: int = 8,
                    progress: Callable[[float], None] | None = None) -> list[FileResult]:
    """One result per config, from one pass of the models: the configs may differ only after the models (the
    output latency, the clustering, the refinement), so bench/diarization_der.py scores several latencies for the
    price of one. ``refine`` refines the first config's windows. Every result's ``elapsed`` is the whole pass.

    Uses both cores: segmentation depends on the audio alone, so a worker thread segments the next batch while
    this thread runs everything that must see the windows in order (planner, CAM++ trunk ring, clustering).
    """
    _check_same_models(configs)
    start = time.perf_counter()
    diarizers = [OnlineDiarizer(c, enrolled, keep_windows=refine and i == 0) for i, c in enumerate(configs)]
    buffer = WindowBuffer(configs[0].geometry)
    ring = analyzer.new_ring()  # this stream's CAM++ trunk frames

    def batches() -> Iterator[list[np.ndarray]]:
        """The file's windows in order, ``batch`` at a time (the last batch may be short)."""
        pending: list[np.ndarray] = []
        for block in read_blocks(path, SAMPLE_RATE):
            pending += buffer.push(block)
            while len(pending) >= batch:
                yield pending[:batch]
                pending = pending[batch:]
            if progress:
                progress(buffer.duration)
        pending += buffer.flush()
        if buffer.samples == 0:
            raise AudioError("the file has no samples")
        for first in range(0, len(pending), batch):
            yield pending[first:first + batch]

    def segment(windows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(the batch zero-padded to ``batch`` windows, activity of the real ones); runs in the worker."""
        padded = np.zeros((batch, analyzer.samples), np.float32)
        padded[:len(windows)] = windows
        return padded, analyzer.segment(padded, consecutive=True)[:len(windows)]

    def cluster(first: int, padded: np.ndarray, activity: np.ndarray) -> None:
        n = len(activity)
        plans = [[d.plan(a) for d in diarizers] for a in activity]
        embeddings = analyzer.embed(padded, activity, [buffer.padding(first + i) for i in range(n)], [ring] * n,
                                    [any(p.embed for p in ps) for ps in plans])
        for a, e, ps in zip(activity, embeddings, plans):
            for diarizer, p in zip(diarizers, ps):
                diarizer(a, e, p)
        release_freed_memory()  # bounded RSS with `keep_freed_memory` (at most every few seconds)

    with ThreadPoolExecutor(1) as worker:
        ahead: deque[tuple[int, Future]] = deque()  # at most two batches in flight: memory stays flat
        first = 0
        for windows in batches():
            ahead.append((first, worker.submit(segment, windows)))
            first += len(windows)
            if len(ahead) > 1:
                done, future = ahead.popleft()
                cluster(done, *future.result())
        while ahead:
            done, future = ahead.popleft()
            cluster(done, *future.result())
    results = []
    for i, diarizer in enumerate(diarizers):
        diarizer.finish(buffer.duration)
        refined = diarizer.refined_turns(buffer.duration) if refine and i == 0 else None
        results.append(FileResult(buffer.duration, diarizer.turns(), refined, time.perf_counter() - start))
    return results


def _check_same_models(configs: list[DiarizationConfig]) -> None:
    """The models' inputs (window, step, pooling weights) and the embedding plan must agree across configs."""
    def models(c: DiarizationConfig) -> tuple:
        g = c.geometry
        return g.duration, g.step, g.resolution, c.overlap_weight, c.embed_every, c.clustering.tau_active

    if not configs or any(models(c) != models(configs[0]) for c in configs):
        raise ConfigError("diarize_file_at: configs must share window, step, overlap_weight, embed_every and "
                         "tau_active (only what runs after the models may differ)")
