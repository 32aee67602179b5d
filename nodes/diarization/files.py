"""File mode: read a recording block by block at 16 kHz mono and run the online chain over it, batching models.

Memory stays flat for hours of audio: the file is decoded ``BLOCK_SECONDS`` at a time and only ``batch`` windows
are held at once (plus a few kB per window kept for the refinement pass).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from nodes.capture.conform import Block, Conformer, check_finite, check_rate
from nodes.diarization.pipeline import SAMPLE_RATE, DiarizationConfig, OnlineDiarizer, WindowBuffer
from nodes.diarization.windows import WindowAnalyzer
from stream.errors import AudioError
from stream.rttm import Turn

BLOCK_SECONDS = 30.0  # decode this much audio at a time
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".oga", ".opus", ".aiff", ".aif")


def audio_files(paths: list[Path]) -> list[Path]:
    """Files as given, folders recursed for audio suffixes (sorted); a missing path raises AudioError."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
        elif path.is_file():
            out.append(path)
        else:
            raise AudioError(f"{path}: no such file or folder")
    return out


def open_audio(path: Path) -> sf.SoundFile:
    """The opened file, or AudioError saying why it cannot be used."""
    try:
        f = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"cannot decode audio ({exc}); give WAV, FLAC, OGG or MP3 "
                         "(convert others with `ffmpeg -i IN OUT.flac`)") from None
    if f.frames == 0:
        f.close()
        raise AudioError("the file has no samples")
    check_rate(int(f.samplerate), "file")
    return f


def read_blocks(path: Path) -> Iterator[np.ndarray]:
    """16 kHz mono float32 blocks of the file (down-mixed, resampled), never the whole file at once."""
    with open_audio(path) as f:
        block = round(BLOCK_SECONDS * f.samplerate)
        conformer = Conformer(int(f.samplerate), SAMPLE_RATE, 1, round(BLOCK_SECONDS * SAMPLE_RATE))
        while True:
            try:
                samples = f.read(block, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise AudioError(f"decoding failed at {f.tell() / f.samplerate:.2f} s ({exc}): "
                                 "the file is truncated or corrupt") from None
            last = len(samples) == 0
            if not last:
                check_finite(samples, f"audio at {f.tell() / f.samplerate:.2f} s")
            for out in (conformer.flush() if last else conformer.push(Block(samples, 0))):
                yield out.samples[:, 0]
            if last:
                return


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
    """Run the online chain over one file (models batched ``batch`` windows at a time)."""
    start = time.perf_counter()
    diarizer = OnlineDiarizer(config, enrolled, keep_windows=refine)
    buffer = WindowBuffer(config.geometry)
    pending: list[np.ndarray] = []
    done = [0]  # windows through the models so far

    def run(windows: list[np.ndarray]) -> None:
        batch_windows = np.stack(windows)
        first, done[0] = done[0], done[0] + len(windows)
        padded = np.concatenate([batch_windows, np.zeros((batch - len(windows), batch_windows.shape[1]), np.float32)])
        activity, model_activity = (a[: len(windows)] for a in analyzer.segment(padded))
        plans = [diarizer.plan(a) for a in activity]
        todo = [i for i, p in enumerate(plans) if p.embed]
        paddings = [buffer.padding(first + i) for i in todo]
        embeddings = (dict(zip(todo, analyzer.embed(batch_windows[todo], model_activity[todo], paddings)))
                      if todo else {})
        for i, (a, p) in enumerate(zip(activity, plans)):
            diarizer(a, embeddings.get(i), p)

    for block in read_blocks(path):
        pending += buffer.push(block)
        while len(pending) >= batch:
            run(pending[:batch])
            pending = pending[batch:]
        if progress:
            progress(buffer.duration)
    pending += buffer.flush()
    if buffer.samples == 0:
        raise AudioError("the file has no samples")
    for first in range(0, len(pending), batch):
        run(pending[first:first + batch])
    diarizer.finish(buffer.duration)
    refined = diarizer.refined_turns(buffer.duration) if refine else None
    return FileResult(buffer.duration, diarizer.turns(), refined, time.perf_counter() - start)
