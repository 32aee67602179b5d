"""`stream beats`: online beat times of recordings, through the same tracker as the live `beats` node.

Writes DIR/<stem>.beats: one beat per line, the time in seconds and, when known, its place in the bar.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

EPILOG = """outputs: DIR/<stem>.beats, the beats the live node emits (one per line: time in s, then the beat in the
bar, 1 = downbeat, when the mode knows it: crnn). Inputs: WAV/FLAC/OGG/MP3 at any rate and channel count
(down-mixed, resampled to 22.05 kHz); folders are recursed. --mode dp: onset strength (no model file);
--mode crnn: BeatNet's CRNN (../shared/models/beatnet/, see `stream models info beatnet-1`); --mode crnn-tuned: the
same network with our weights fine-tuned on the music development set (nodes/beats/README.md)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("beats", help="online beat tracking of audio files -> .beats", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("audio", nargs="+", type=Path, metavar="AUDIO", help="audio files or folders")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the .beats files")
    p.add_argument("--mode", choices=("dp", "crnn", "crnn-tuned"), default="dp", help="front end (default dp)")
    p.add_argument("--model", type=int, choices=(1, 2, 3), default=1, help="crnn: BeatNet model (default 1)")
    p.set_defaults(func=run)


def track(args: argparse.Namespace, on_file=None) -> int:
    """Track every file of `args.audio`, write the .beats files, print one line per file; `on_file(path, result)`
    sees each result (`stream eval beats` scores them). Returns the exit code."""
    from tqdm import tqdm

    from nodes.beats.files import track_file, write_beats
    from nodes.beats.tracker import TrackerConfig
    from nodes.capture.files import audio_files
    from stream.errors import StreamError

    started = time.perf_counter()
    config = TrackerConfig(mode=args.mode, model=args.model)
    params = None
    if args.mode != "dp":
        from nodes.beats.beatnet import weights
        from stream.models import use_compile_cache

        use_compile_cache()
        params = weights(args.mode, args.model)
    args.out.mkdir(parents=True, exist_ok=True)
    files, failed, audio, audio_count = [], 0, 0.0, 0
    for given in args.audio:  # a missing path is one bad line, not the end of the batch
        try:
            files += audio_files([given])
        except StreamError as exc:
            print(f"{given}: error: {exc}", file=sys.stderr)
            failed += 1
    for path in files:
        try:
            with tqdm(unit="s", desc=path.name, leave=False, disable=not sys.stderr.isatty(), file=sys.stderr) as bar:
                result = track_file(path, config, params, progress=lambda t: bar.update(round(t, 1) - bar.n))
        except StreamError as exc:
            print(f"{path}: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        write_beats(args.out / f"{path.stem}.beats", result.beats)
        tempo = f"{result.beats[-1].tempo:.1f} BPM" if result.beats else "no tempo"
        print(f"{path}: {len(result.beats)} beats, {tempo} at the end, {result.duration:.1f} s, "
              f"RTF {result.elapsed / max(result.duration, 1e-9):.4f}")
        audio += result.duration
        audio_count += 1
        if on_file:
            on_file(path, result)
    if len(files) > 1 and audio > 0:
        done = time.perf_counter()
        print(f"{audio_count} of {len(files)} files, {audio:.1f} s of audio in {done - started:.1f} s: "
              f"RTF {(done - started) / audio:.4f}")
    return 1 if failed else 0


def run(args: argparse.Namespace) -> int:
    return track(args)
