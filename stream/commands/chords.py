"""`stream chords`: chord labels of recordings, through the same node code as the live graph -> <stem>.lab."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EPILOG = """outputs: DIR/<stem>.lab, one `start end label` line per chord (seconds; Harte syntax: C:maj, A:min, N), the
changes the live chords node announces for that audio. Inputs: WAV/FLAC/OGG/MP3 at any rate and channel count;
folders are recursed. A file that cannot be read is reported in one line and skipped."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("chords", help="chord recognition of audio files -> .lab", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("audio", nargs="+", type=Path, metavar="AUDIO", help="audio files or folders")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the .lab files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from nodes.capture.files import audio_files
    from nodes.chords.files import chords_file, write_lab
    from stream.errors import StreamError

    files = audio_files(args.audio)
    args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in files:
        try:
            with tqdm(unit="s", desc=path.name, leave=False, disable=not sys.stderr.isatty(), file=sys.stderr) as bar:
                result = chords_file(path, progress=lambda t: bar.update(round(t, 1) - bar.n))
        except StreamError as exc:
            print(f"{path}: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        write_lab(args.out / f"{path.stem}.lab", result.segments)
        chords = len({s.label for s in result.segments} - {"N"})
        print(f"{path}: {len(result.segments)} segments, {chords} distinct chords in {result.duration:.1f} s, "
              f"RTF {result.elapsed / max(result.duration, 1e-9):.4f}")
    return 1 if failed else 0
