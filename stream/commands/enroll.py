"""`stream enroll NAME AUDIO... --db DB [--model campplus]`: add a named speaker's embeddings to an enrolment store."""

from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = """\
Embed each audio file (any rate and channel count; folders are searched for audio) and store the embeddings
under NAME in the enrolment store DB (a folder: store.json + embeddings.npz, see nodes/speakers/store.py).
Enrolling a known NAME again adds to its embeddings (--replace starts it afresh). A store holds one model's
embeddings: a DB made with another --model is refused. Then calibrate a threshold with
`stream verify --calibrate TRIALS --db DB` and use `stream verify` / `stream identify`.
"""


def register(sub: argparse._SubParsersAction) -> None:
    from nodes.speakers.embeddings import MODELS

    parser = sub.add_parser("enroll", help="enrol a named speaker from audio files into an enrolment store",
                            description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", metavar="NAME", help="speaker name (letters, digits, '_', '.', '-')")
    parser.add_argument("audio", nargs="+", type=Path, metavar="AUDIO", help="audio files or folders of the speaker")
    parser.add_argument("--db", type=Path, required=True, help="enrolment store folder (created if missing)")
    parser.add_argument("--model", default="campplus", choices=MODELS, help="speaker encoder (campplus)")
    parser.add_argument("--replace", action="store_true", help="drop NAME's earlier embeddings first")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nodes.capture.files import audio_files
    from nodes.speakers.embeddings import DIM, embed_paths
    from nodes.speakers.store import SpeakerStore

    SpeakerStore.open(args.db, args.model, dim=DIM[args.model], create=True)  # a wrong model fails before compute
    paths = audio_files(args.audio)
    embeddings = embed_paths(args.model, paths)
    with SpeakerStore.edit(args.db, args.model, dim=DIM[args.model], create=True) as store:  # locked: read, save
        store.enrol(args.name, embeddings, [str(p) for p in paths], replace=args.replace)
    print(f"enrolled {args.name}: {len(paths)} files, {len(store.speakers[args.name])} embeddings in {args.db} "
          f"({len(store.speakers)} speakers)")
    return 0
