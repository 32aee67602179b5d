"""`stream plot HYP [--reference REF] --out PNG`: a timeline picture of turns or events, reference above hypothesis.

Reads RTTM (`stream diarize`, the live graph), JSONL events (`jsonl` sink, `stream listen --json`: speaker turns and
sound events) and TSV (`stream detect`: onset, offset, label); one lane per label, drawn by the same function as
`stream eval der --plots`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from stream.errors import ConfigError
from stream.rttm import Turn


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="timeline PNG of an RTTM / events JSONL / TSV, reference vs hypothesis")
    p.add_argument("hypothesis", type=Path, help="what was found: .rttm, .jsonl (events) or .tsv (onset offset label)")
    p.add_argument("--reference", type=Path, help="the truth to draw above it (same formats)")
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    p.add_argument("--uri", help="which recording of a multi-recording RTTM (default: the first)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nodes.diarization.evaluate import plot_timelines

    hypothesis = read_spans(args.hypothesis, args.uri)
    reference = read_spans(args.reference, args.uri) if args.reference else []
    title = args.hypothesis.name + (f" vs {args.reference.name}" if args.reference else "")
    plot_timelines(args.out, args.uri or args.hypothesis.stem, reference, hypothesis, title=title)
    print(f"{args.out}: {len(reference)} reference and {len(hypothesis)} hypothesis spans")
    return 0


def read_spans(path: Path, uri: str | None = None) -> list[Turn]:
    """Labelled spans of a file, by its suffix; ConfigError for a missing file or an unknown format."""
    from stream.rttm import read_rttm

    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".rttm":
        turns = read_rttm(path)
        if uri is not None and uri not in turns:
            raise ConfigError(f"{path} has no recording {uri!r}; it has {sorted(turns)}")
        return turns[uri] if uri is not None else next(iter(turns.values()), [])
    if suffix == ".jsonl":
        return [span for line in path.read_text().splitlines() if line.strip()
                for span in _event_span(json.loads(line))]
    if suffix == ".tsv":
        rows = [line.split("\t") for line in path.read_text().splitlines() if line.strip()]
        try:
            return [Turn(float(a), float(b), label) for a, b, label, *_ in rows if a != "onset"]
        except ValueError as exc:
            raise ConfigError(f"{path}: expected onset<TAB>offset<TAB>label lines ({exc})") from None
    raise ConfigError(f"{path}: give an .rttm, .jsonl (events) or .tsv (onset offset label) file")


def _event_span(event: dict) -> list[Turn]:
    """A speaker turn, or a finished sound event, as a span; other events draw nothing."""
    if event.get("type") == "speaker.turn":
        return [Turn(float(event["start"]), float(event["stop"]), str(event["label"]))]
    if event.get("type") == "sound.stop":
        return [Turn(float(event["start"]), float(event["start"]) + float(event["duration"]), str(event["rule"]))]
    return []
