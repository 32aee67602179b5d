"""`stream fingerprint add|match`: build an on-disk fingerprint index of tracks, identify recordings against it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EPILOG = """add: hashes every file (folders are recursed) into DIR (hashes.npz + tracks.json); a track is named after
its file stem, and adding a stem again replaces it.
match: runs the live fingerprint node over each file and prints one line per announced match (audio time, track,
offset into the track, speed, confidence), or "no match". Exit status 1 when a file cannot be read."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fingerprint", help="audio fingerprints: index tracks, identify recordings",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, text in (("add", "add tracks to an index"), ("match", "identify recordings against an index")):
        a = actions.add_parser(name, help=text)
        a.add_argument("audio", nargs="+", type=Path, metavar="AUDIO", help="audio files or folders")
        a.add_argument("--index", type=Path, required=True, metavar="DIR", help="index folder")
        a.set_defaults(func=add if name == "add" else match)


def add(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from nodes.capture.files import audio_files
    from nodes.fingerprint.files import file_hashes
    from nodes.fingerprint.index import FingerprintIndex
    from stream.errors import StreamError

    files = audio_files(args.audio)
    exists = (args.index / "tracks.json").is_file()
    index = FingerprintIndex.load(args.index) if exists else FingerprintIndex.empty()
    failed, tracks = 0, []
    for path in tqdm(files, unit="file", disable=not sys.stderr.isatty(), file=sys.stderr, leave=False):
        try:
            hashes, duration = file_hashes(path)
        except StreamError as exc:
            print(f"{path}: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        tracks.append((path.stem, duration, hashes))
    index = index.add(tracks)
    index.save(args.index)
    print(f"{args.index}: {len(index.names)} tracks, {len(index.hash)} hashes "
          f"({len(files) - failed} of {len(files)} files added)")
    return 1 if failed else 0


def match(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from nodes.capture.files import audio_files
    from nodes.fingerprint.files import match_file
    from nodes.fingerprint.index import FingerprintIndex
    from stream.errors import StreamError

    files = audio_files(args.audio)
    index = FingerprintIndex.load(args.index)
    failed = 0
    for path in files:
        try:
            with tqdm(unit="s", desc=path.name, leave=False, disable=not sys.stderr.isatty(), file=sys.stderr) as bar:
                result = match_file(path, index, progress=lambda t: bar.update(round(t, 1) - bar.n))
        except StreamError as exc:
            print(f"{path}: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        if not result.events:
            print(f"{path}: no match")
        for e in result.events:
            print(f"{path}: at {e['t_audio']:.1f} s: {e['track']} offset {e['offset']:.2f} s, speed {e['speed']:.3f}, "
                  f"confidence {e['confidence']:.2f}")
    return 1 if failed else 0
