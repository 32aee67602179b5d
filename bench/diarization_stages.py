"""CPU seconds per stage of `stream diarize --refine` (segmentation, embedding, online clustering, refinement).

CPU time, not wall time, so it can be measured while other jobs share the cores. The files run one after the
other and the segmentation worker runs inline (`diarize_file`'s thread pool replaced by a synchronous one), so
each stage's process-wide CPU time (XLA's own threads included) is its own; the command itself overlaps
segmentation with the rest. Compilation (or loading from the persistent cache) counts in the stage that triggers it.

    .venv/bin/python bench/diarization_stages.py [FOLDER] [--files N]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from concurrent.futures import Future
from pathlib import Path

START = time.process_time()

import nodes.diarization.files as files  # noqa: E402
from nodes.diarization.pipeline import OnlineDiarizer  # noqa: E402
from nodes.diarization.windows import WindowAnalyzer  # noqa: E402
from stream.commands.diarize import build  # noqa: E402
from stream.paths import data_dir  # noqa: E402

cpu: Counter[str] = Counter()


class Inline:
    """A one-worker executor that runs each task at once in the caller's thread."""

    def __init__(self, workers: int) -> None:
        pass

    def __enter__(self) -> Inline:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def submit(self, fn, *args) -> Future:
        future: Future = Future()
        future.set_result(fn(*args))
        return future


def timed(owner: type, name: str, stage: str) -> None:
    """Replace owner.name by a wrapper that adds its CPU time to `cpu[stage]`."""
    method = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start = time.process_time()
        try:
            return method(*args, **kwargs)
        finally:
            cpu[stage] += time.process_time() - start

    setattr(owner, name, wrapper)


def run() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", nargs="?", type=Path, default=data_dir() / "diarization" / "ami")
    parser.add_argument("--files", type=int, help="only the first N files")
    args = parser.parse_args()
    files.ThreadPoolExecutor = Inline
    timed(WindowAnalyzer, "segment", "segmentation")
    timed(WindowAnalyzer, "embed", "embedding (fbank, CAM++ trunk, pooling)")
    for name in ("plan", "__call__", "finish"):
        timed(OnlineDiarizer, name, "online clustering and turns")
    timed(OnlineDiarizer, "refined_turns", "refinement")
    config, analyzer, _ = build(argparse.Namespace(latency=0.5, max_speakers=None, enrolled=None, segmentation=""))
    cpu["imports, models loaded"] = time.process_time() - START
    audio, start = 0.0, time.process_time()
    for path in sorted(args.folder.glob("*.flac"))[: args.files]:
        audio += files.diarize_file(path, analyzer, config, refine=True).duration
    cpu["rest (reading, buffers)"] = time.process_time() - start - sum(
        v for k, v in cpu.items() if k != "imports, models loaded")
    total = time.process_time()
    print(f"{audio:.0f} s of audio, {total:.2f} CPU s = {total / audio:.4f} CPU s per audio s")
    for stage, seconds in cpu.items():
        print(f"  {stage:40s} {seconds:6.2f} s  {seconds / audio:.4f} per audio s")


if __name__ == "__main__":
    run()
