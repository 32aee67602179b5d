"""Speed and memory of `stream diarize --refine`: RTF on the 12 AMI clips, and a 1-hour file (the clips looped).

RTF = wall time / audio time, end to end (one process for all files, Python start-up, model loading and compilation
included; run twice so the second run finds the compiled models in the persistent cache, as a user's second run
does) and as the command's own last line reports it (from its start, imports aside; for one file, that file's
summary line). CPU s = user + system of the
process. Peak RSS from getrusage; the process's RSS is also sampled every `--sample-s` seconds (flat memory on long
files). The load average of the machine is printed with each run: other jobs sharing the cores inflate wall times.
The 1-hour file is written to a temporary folder, never to the repository.

    .venv/bin/python bench/diarization_speed.py [--hour] [--minutes 60] [--sample-s 30]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
import soundfile as sf

from stream.paths import data_dir


@dataclass(frozen=True)
class Run:
    wall: float  # s, whole process
    rtf: float  # the command's own figure: its total line (several files) or the file's summary line
    peak_mib: float  # peak RSS of the process
    cpu: float  # s, user + system
    rss_mib: list[float]  # RSS sampled every sample_s
    load: tuple[float, float]  # 1-minute load average at start and end


def diarize(inputs: list[Path], out: Path, sample_s: float) -> Run:
    """One `stream diarize --refine` process over `inputs`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load0 = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "stream.cli", "diarize", *map(str, inputs), "--out", str(out),
                             "--refine"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rss, watch = [], psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            proc.wait(timeout=sample_s)  # first sample after sample_s: at 0 s the process has not loaded yet
        except subprocess.TimeoutExpired:
            pass
        try:
            rss.append(watch.memory_info().rss / 2**20)
        except psutil.NoSuchProcess:
            break
    stdout, stderr = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"stream diarize failed ({proc.returncode}):\n{stderr}")
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rtf = float(re.findall(r"RTF ([0-9.]+)", stdout)[-1])
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return Run(wall, rtf, after.ru_maxrss / 1024, cpu, rss, (load0, os.getloadavg()[0]))


def run() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hour", action="store_true", help="also run the long file")
    parser.add_argument("--minutes", type=float, default=60.0, help="length of the long file")
    parser.add_argument("--sample-s", type=float, default=30.0, help="seconds between RSS samples")
    args = parser.parse_args()
    ami = data_dir() / "diarization" / "ami"
    clips = sorted(ami.glob("*.flac"))
    audio = sum(sf.info(str(c)).duration for c in clips)
    with tempfile.TemporaryDirectory() as tmp:
        for attempt in ("first run", "second run (compiled models cached)"):
            r = diarize([ami], Path(tmp) / "ami", args.sample_s)
            print(f"12 AMI clips ({audio:.0f} s), {attempt}: RTF {r.wall / audio:.3f} end to end ({r.wall:.1f} s "
                  f"wall), {r.rtf:.3f} as the command reports it; {r.cpu:.1f} CPU s = {r.cpu / audio:.3f} CPU s per audio s; "
                  f"peak RSS {r.peak_mib:.0f} MiB; load {r.load[0]:.1f} -> {r.load[1]:.1f}", flush=True)
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
            r = diarize([long], Path(tmp) / "long", args.sample_s)
            seconds = args.minutes * 60
            print(f"{args.minutes:g}-minute file: RTF {r.wall / seconds:.3f} end to end ({r.wall:.0f} s wall), "
                  f"{r.rtf:.3f} file only; {r.cpu / seconds:.3f} CPU s per audio s; peak RSS {r.peak_mib:.0f} "
                  f"MiB (max over all runs); load {r.load[0]:.1f} -> {r.load[1]:.1f}")
            print(f"  RSS every {args.sample_s:g} s (MiB): " + " ".join(f"{x:.0f}" for x in r.rss_mib))
            if r.rss_mib:
                print(f"  RSS min/median/max: {min(r.rss_mib):.0f} / {np.median(r.rss_mib):.0f} / "
                      f"{max(r.rss_mib):.0f} MiB")


if __name__ == "__main__":
    run()
