"""`stream diarize`: who spoke when in recordings, through the same online chain as the live graph.

Writes DIR/<stem>.rttm (what the live graph emits at --latency) and, with --refine, DIR/<stem>.refined.rttm.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

EPILOG = """outputs: DIR/<stem>.rttm, the online result at --latency (RTTM uri = file stem); with --refine also
DIR/<stem>.refined.rttm, re-clustered and re-segmented with the whole file seen.
Inputs: WAV/FLAC/OGG/MP3 at any rate and channel count (down-mixed, resampled to 16 kHz); folders are recursed.
Two files are diarised at a time: a file's summary line gives its own wall time over its duration (RTF), the last
line the throughput over all files. Inputs that share a stem (a/x.flac, b/x.wav) are refused before any work:
their outputs would overwrite each other. A path or file that cannot be used, or an output that cannot be written,
is one error line naming it; the other files go on and the exit code is 1. Outputs are written atomically (never
a partial RTTM); after Ctrl-C or a full disk, --skip-existing does only the files not yet written."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("diarize", help="speaker diarisation of audio files -> RTTM", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("audio", nargs="+", type=Path, metavar="AUDIO", help="audio files or folders")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the RTTM files")
    p.add_argument("--latency", type=float, default=0.5, metavar="S",
                   help="output latency in seconds, a multiple of 0.5 up to the 8 s window (default 0.5)")
    p.add_argument("--refine", action="store_true", help="also write <stem>.refined.rttm (offline refinement)")
    p.add_argument("--enrolled", type=Path, metavar="DB",
                   help="enrolment store (see `stream enroll`): its speakers are labelled by name")
    p.add_argument("--max-speakers", type=int, metavar="N", help="most speakers per file (default 20)")
    p.add_argument("--segmentation", metavar="WEIGHTS", default="",
                   help="segmentation weights from `stream train-segmentation` (default: segmentation-3.0)")
    p.add_argument("--skip-existing", action="store_true",
                   help="skip files whose outputs are already in --out (resume an interrupted run)")
    p.set_defaults(func=run)


def build(args: argparse.Namespace):  # -> (DiarizationConfig, WindowAnalyzer, enrolled)
    """Config, models and enrolled speakers from the command line (shared with `stream eval der`)."""
    import dataclasses

    from nodes.diarization.pipeline import DiarizationConfig
    from nodes.diarization.windows import WindowAnalyzer
    from nodes.segmentation.weights import load_segmentation
    from stream.allocator import keep_freed_memory
    from stream.models import load_params, use_compile_cache

    use_compile_cache()  # a second run loads the compiled models from disk instead of compiling them again
    keep_freed_memory()

    config = DiarizationConfig()
    geometry = dataclasses.replace(config.geometry, latency=args.latency)
    clustering = config.clustering
    if args.max_speakers is not None:
        clustering = dataclasses.replace(clustering, max_speakers=args.max_speakers)
    config = dataclasses.replace(config, geometry=geometry, clustering=clustering)
    enrolled = None
    if args.enrolled is not None:
        from nodes.speakers.store import SpeakerStore

        enrolled = SpeakerStore.open(args.enrolled, "campplus").centroids()
    analyzer = WindowAnalyzer(load_segmentation(getattr(args, "segmentation", "")), load_params("campplus"),
                              config.geometry, config.overlap_weight)
    return config, analyzer, enrolled


PROGRESS_S = 10.0  # s between progress lines when stderr is not a terminal (a log file, CI)
CONCURRENT_FILES = 2  # files in flight: one file's start and end (a model batch with nothing to overlap it)
#   overlap the other's middle, so both cores stay busy on folders of short recordings (bench/RESULTS.md)


class _Stopped(Exception):
    """Raised in a file's thread when the command is interrupted, so it ends at its next block of audio."""


def run(args: argparse.Namespace) -> int:
    import threading
    from concurrent.futures import ThreadPoolExecutor
    from queue import SimpleQueue

    from tqdm import tqdm

    from nodes.capture.files import open_audio
    from nodes.diarization.files import FileResult, diarize_file
    from stream.commands import batch
    from stream.errors import StreamError
    from stream.rttm import rttm_uri, write_rttm

    started = time.perf_counter()
    files, unusable = batch.inputs(args.audio)
    batch.refuse_collisions(files, lambda path: rttm_uri(path.stem))  # the uri, and so the file name, is unique
    batch.check_out_dir(args.out)

    def outputs(path: Path) -> list[Path]:
        return [args.out / f"{path.stem}.rttm"] + ([args.out / f"{path.stem}.refined.rttm"] if args.refine else [])

    if getattr(args, "skip_existing", False):
        files = batch.pending(files, outputs)
    if not files:
        return 1 if unusable else 0
    config, analyzer, enrolled = build(args)
    rows: SimpleQueue[int] = SimpleQueue()  # terminal rows for the progress bars of the files in flight
    for row in range(CONCURRENT_FILES):
        rows.put(row)
    stop = threading.Event()  # set on the way out (Ctrl-C included): files in flight end at their next block

    def one(path: Path) -> FileResult:
        with open_audio(path) as f:
            total, rate = f.frames / f.samplerate, f.samplerate
        if rate < 16000:
            print(f"{path}: note: {rate} Hz audio upsampled to 16000 Hz (narrow-band audio diarises worse)",
                  file=sys.stderr)
        row = rows.get()
        try:
            with tqdm(total=round(total, 1), unit="s", desc=path.name, leave=False, position=row,
                      disable=not sys.stderr.isatty(), file=sys.stderr) as bar:

                logged = [time.monotonic()]

                def progress(t: float) -> None:
                    if stop.is_set():
                        raise _Stopped
                    bar.update(round(t, 1) - bar.n)
                    if bar.disable and time.monotonic() - logged[0] >= PROGRESS_S:  # a log, not a terminal
                        logged[0] = time.monotonic()
                        print(f"{path}: {t:.0f} of {total:.0f} s ({100 * t / total:.0f} %)", file=sys.stderr,
                              flush=True)

                return diarize_file(path, analyzer, config, enrolled, refine=args.refine, progress=progress)
        finally:
            rows.put(row)

    def write(path: Path, result: FileResult) -> None:
        uri = rttm_uri(path.stem)
        write_rttm(args.out / f"{path.stem}.rttm", uri, result.turns)
        if result.refined is not None:
            write_rttm(args.out / f"{path.stem}.refined.rttm", uri, result.refined)

    audio, finished, failed = 0.0, 0, 0
    pool = ThreadPoolExecutor(CONCURRENT_FILES)
    try:
        for path, future in [(path, pool.submit(one, path)) for path in files]:  # reported in input order
            try:
                result = future.result()
            except StreamError as exc:
                print(f"{path}: error: {exc}", file=sys.stderr)
                failed += 1
            else:
                if batch.write_output(path, lambda: write(path, result)):
                    print(f"{path}: {result.speakers} speaker{'s' * (result.speakers != 1)}, {result.speech:.1f} s "
                          f"speech of {result.duration:.1f} s, RTF {result.elapsed / max(result.duration, 1e-9):.3f}")
                    audio += result.duration
                else:
                    failed += 1
            finished += 1
    except KeyboardInterrupt:
        left = files[finished:]
        print(f"stream diarize: interrupted; {len(left)} of {len(files)} files not finished (nothing partial "
              f"written): {', '.join(map(str, left[:5]))}{' ...' if len(left) > 5 else ''}; run the same command "
              "with --skip-existing to do only those", file=sys.stderr)
        raise
    finally:
        stop.set()
        pool.shutdown(cancel_futures=True)
    if len(files) > 1 and audio > 0:
        done = time.perf_counter()
        print(f"{len(files) - failed} of {len(files)} files, {audio:.1f} s of audio in {done - started:.1f} s "
              f"(models loaded and compiled included): RTF {(done - started) / audio:.3f}")
    return 1 if failed or unusable else 0
