"""File mode: read a recording block by block at 16 kHz mono and run the online chain over it, batching models.

Memory stays flat for hours of audio: the file is read in blocks (`nodes.capture.files`) and only two batches of
windows are held at once (plus a few kB per window kept for the refinement pass).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nodes.capture.files import read_blocks
from nodes.diarization.isolated import isolated_embeddings
from nodes.diarization.pipeline import SAMPLE_RATE, DiarizationConfig, OnlineDiarizer, WindowBuffer
from nodes.diarization.refine import WindowRecord
from nodes.diarization.stitching import Plan
from nodes.diarization.windows import WindowAnalyzer
from stream.allocator import release_freed_memory
from stream.errors import AudioError, ConfigError
from stream.models import Params
from stream.rttm import Turn

ISOLATE_BATCH = 4  # windows whose isolated embeddings are computed together (up to 3 local speakers each)


@dataclass(frozen=True)
class FileResult:
    duration: float  # s of audio
    turns: list[Turn]  # online output (what the live graph emits)
    refined: list[Turn] | None  # refinement pass, when asked for
    elapsed: float  # s of wall time
    windows: list[WindowRecord] = field(default_factory=list)  # what the refinement saw (bench/train_plda.py)

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

    every = configs[0].refine.isolate_every if refine else 0
    isolate: list[tuple[int, np.ndarray, np.ndarray]] = []  # (window, audio, activity) to embed alone, a batch

    def cluster(first: int, padded: np.ndarray, activity: np.ndarray) -> None:
        n = len(activity)
        plans = [[d.plan(a) for d in diarizers] for a in activity]
        embeddings = analyzer.embed(padded, activity, [buffer.padding(first + i) for i in range(n)], [ring] * n,
                                    [any(p.embed for p in ps) for ps in plans])
        for i, (a, e, ps) in enumerate(zip(activity, embeddings, plans)):
            for diarizer, p in zip(diarizers, ps):
                diarizer(a, e, p)
            if every and (first + i) % every == 0 and ps[0].embed:
                isolate.append((first + i, padded[i].copy(), a))
        if len(isolate) >= ISOLATE_BATCH:
            embed_isolated()
        release_freed_memory()  # bounded RSS with `keep_freed_memory` (at most every few seconds)

    def embed_isolated() -> None:
        attach_isolated(diarizers[0].records, isolate, analyzer.emb_params, configs[0])
        isolate.clear()

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
    if isolate:
        embed_isolated()
    results = []
    for i, diarizer in enumerate(diarizers):
        diarizer.finish(buffer.duration)
        refined = diarizer.refined_turns(buffer.duration) if refine and i == 0 else None
        results.append(FileResult(buffer.duration, diarizer.turns(), refined, time.perf_counter() - start,
                                  diarizer.records))
    return results


def attach_isolated(records: list[WindowRecord], windows: list[tuple[int, np.ndarray, np.ndarray]], params: Params,
                    config: DiarizationConfig) -> None:
    """Set ``records[index].isolated`` for each (index, window audio, activity) of ``windows`` (isolated.py)."""
    embedded = isolated_embeddings(params, [w for _, w, _ in windows], [a for _, _, a in windows],
                                   config.geometry.resolution, config.refine.min_speech)
    for (index, _, _), emb in zip(windows, embedded):
        records[index].isolated = emb


def isolate_kept(records: list[WindowRecord], path: Path, params: Params, config: DiarizationConfig) -> bool:
    """Give the kept windows of ``path`` that lack them their isolated embeddings, as `diarize_file_at` does, from
    the same windows of audio (windows kept before isolated embeddings existed: bench/diarization_der.py
    --windows); True if any was added."""
    every = config.refine.isolate_every
    wanted = {j for j, r in enumerate(records) if every and j % every == 0 and r.embeddings is not None
              and r.isolated is None}
    if not wanted:
        return False
    buffer = WindowBuffer(config.geometry)

    def windows() -> Iterator[np.ndarray]:
        for block in read_blocks(path, SAMPLE_RATE):
            yield from buffer.push(block)
        yield from buffer.flush()

    pending: list[tuple[int, np.ndarray, np.ndarray]] = []
    for index, window in enumerate(windows()):
        if index in wanted:
            pending.append((index, window, records[index].activity))
        if len(pending) >= ISOLATE_BATCH:
            attach_isolated(records, pending, params, config)
            pending.clear()
    if pending:
        attach_isolated(records, pending, params, config)
    return True


def _check_same_models(configs: list[DiarizationConfig]) -> None:
    """The models' inputs (window, step, pooling weights) and the embedding plan must agree across configs."""
    def models(c: DiarizationConfig) -> tuple:
        g = c.geometry
        return g.duration, g.step, g.resolution, c.overlap_weight, c.embed_every, c.clustering.tau_active

    if not configs or any(models(c) != models(configs[0]) for c in configs):
        raise ConfigError("diarize_file_at: configs must share window, step, overlap_weight, embed_every and "
                         "tau_active (only what runs after the models may differ)")


def replay_windows(windows: list[WindowRecord], duration: float, config: DiarizationConfig,
                   refine: bool = False) -> FileResult:
    """The chain after the models, fed with the windows an earlier pass kept (``FileResult.windows``): what
    ``diarize_file`` returns for the same file under another clustering, latency or refinement config, without
    running the models again (bench/diarization_der.py --windows)."""
    start = time.perf_counter()
    diarizer = OnlineDiarizer(config, keep_windows=refine)
    for w in windows:
        diarizer(w.activity, w.embeddings, Plan(w.embeddings is not None, w.continues))
        if refine:
            diarizer.records[-1].isolated = w.isolated
    diarizer.finish(duration)
    refined = diarizer.refined_turns(duration) if refine else None
    return FileResult(duration, diarizer.turns(), refined, time.perf_counter() - start, diarizer.records)
