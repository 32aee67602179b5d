"""Speed and memory of `stream diarize --refine`: RTF on the 12 AMI clips, and a 1-hour file (the clips looped).

RTF = wall time / audio time, from the per-file summary lines (models loaded and compiled once, before the first
file) and end to end (one process for all files, start-up and compilation included). Peak RSS of the process
from getrusage. The 1-hour file is written to a temporary folder, never to the repository.

    .venv/bin/python bench/diarization_speed.py [--hour] [--minutes 60]
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from stream.paths import data_dir


def diarize(inputs: list[Path], out: Path) -> tuple[float, list[float], float, float]:
    """(wall s, per-file RTFs, peak RSS MiB, CPU s) of one `stream diarize --refine` process.

    CPU seconds (user + system) say what the run costs when other processes share the cores: on an idle
    2-core machine the wall time is at least CPU / 2.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "stream.cli", "diarize", *map(str, inputs), "--out", str(out),
                           "--refine"], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rtfs = [float(m) for m in re.findall(r"RTF ([0-9.]+)", proc.stdout)]
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, rtfs, after.ru_maxrss / 1024, cpu


def run() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hour", action="store_true", help="also run the long file")
    parser.add_argument("--minutes", type=float, default=60.0, help="length of the long file")
    args = parser.parse_args()
    ami = data_dir() / "diarization" / "ami"
    clips = sorted(ami.glob("*.flac"))
    audio = sum(sf.info(str(c)).duration for c in clips)
    with tempfile.TemporaryDirectory() as tmp:
        wall, rtfs, rss, cpu = diarize([ami], Path(tmp) / "ami")
        durations = [sf.info(str(c)).duration for c in clips]
        per_file = sum(r * d for r, d in zip(rtfs, durations)) / audio
        print(f"12 AMI clips ({audio:.0f} s): RTF {per_file:.3f} (files only), {wall / audio:.3f} end to end "
              f"({wall:.1f} s wall, {cpu:.0f} CPU s = {cpu / audio:.3f} CPU s per audio s), peak RSS {rss:.0f} MiB")
        if args.hour:
            long = Path(tmp) / "long.flac"
            waves = [sf.read(str(c), dtype="float32")[0] for c in clips]
            target = int(args.minutes * 60 * 16000)
            with sf.SoundFile(str(long), "w", 16000, 1, subtype="PCM_16") as f:
                written = 0
                while written < target:
                    for w in waves:
                        f.write(w[: target - written])
                        written += min(len(w), target - written)
            wall, rtfs, rss, cpu = diarize([long], Path(tmp) / "long")
            print(f"{args.minutes:g}-minute file: RTF {rtfs[0]:.3f} ({wall:.0f} s wall, {cpu / (args.minutes * 60):.3f} "
                  f"CPU s per audio s), peak RSS {rss:.0f} MiB (max over this and the earlier run)")


if __name__ == "__main__":
    run()
