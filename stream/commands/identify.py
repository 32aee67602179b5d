"""`stream identify AUDIO... --db DB`: which enrolled speaker is speaking in each file, or "unknown"."""

from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = """\
Score each audio file against every enrolled speaker's centroid (cosine, s-normed against the store's cohort when
it has one) and name the best one when its score reaches the store's calibrated threshold (before any calibration, on
raw cosine: 0.45, the diarisation's naming threshold), "unknown" otherwise.
Output: one tab-separated line per file: file, name (or unknown), best score, threshold, best candidate.
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("identify", help="name the enrolled speaker of each audio file (or unknown)",
                            description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("audio", nargs="+", type=Path, metavar="AUDIO", help="audio files or folders")
    parser.add_argument("--db", type=Path, required=True, help="enrolment store folder")
    parser.add_argument("--threshold", type=float, help="override the store's calibrated threshold")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nodes.capture.files import audio_files
    from nodes.speakers.decide import identify
    from nodes.speakers.embeddings import embed_paths
    from nodes.speakers.store import SpeakerStore

    store = SpeakerStore.open(args.db)
    paths = audio_files(args.audio)
    for path, d in zip(paths, identify(store, embed_paths(store.model, paths), args.threshold)):
        print(f"{path}\t{d.name}\t{d.score:.4f}\t{d.threshold:.4f}\t{d.candidate}")
    return 0
