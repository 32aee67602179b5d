"""`stream eval sed`: sound-event alerts (`stream detect` outputs, or `stream detect` run now) against references.

Prints the event-based F1 (onsets within +-0.5 s) and segment-based F1 (1 s) per rule and overall over the
files whose reference has events (sed_eval 0.2.1's definitions, nodes/sed/evaluate.py), false alarms per hour over
the files whose reference is empty (negatives), and the median onset -> sound.start latency; with --plots, one
score-vs-time PNG per file with the reference shaded.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REFERENCE_SUFFIXES = (".txt", ".tsv", ".csv", ".ann")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sed", help="sound-event alerts: event/segment F1 per rule, false alarms per hour, latency")
    p.add_argument("hypotheses", nargs="*", type=Path, metavar="EVENTS",
                   help="<stem>.events.tsv files of `stream detect`, or folders of them (leave out with --audio)")
    p.add_argument("--reference", nargs="+", type=Path, required=True, metavar="REF",
                   help="reference event lists (onset<TAB>offset<TAB>label, one file per audio file, named "
                   "<stem>.txt/.tsv) or folders of them; an empty file marks a negative recording")
    p.add_argument("--labels", metavar="A,B", help="rules to score (default: the labels found in the references)")
    p.add_argument("--audio", nargs="+", type=Path, metavar="AUDIO",
                   help="run `stream detect` on these files/folders first and score its output")
    p.add_argument("--out", type=Path, metavar="DIR", help="with --audio: keep the event files here")
    p.add_argument("--rules", type=Path, metavar="FILE", help="with --audio: alert rules TOML")
    p.add_argument("--plots", type=Path, metavar="DIR", help="write <stem>.png score-vs-time plots here "
                   "(needs <stem>.scores.npz beside the events: `stream detect --scores`, or --audio)")
    p.set_defaults(func=run)


def _stem(path: Path) -> str:
    return path.name.removesuffix(".events.tsv") if path.name.endswith(".events.tsv") else path.stem


def _files(paths: list[Path], want) -> list[Path]:  # noqa: ANN001 - want: Path -> bool
    from nodes.sed.evaluate import FormatError

    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.is_file() and want(p))
        elif path.is_file():
            out.append(path)
        else:
            raise FormatError(f"{path}: no such file or folder")
    return out


def _jsonl(tsv: Path) -> list[dict]:
    path = tsv.with_name(f"{_stem(tsv)}.events.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from nodes.sed.evaluate import format_report, plot_scores, read_events, score
    from stream.commands import detect

    if bool(args.hypotheses) == bool(args.audio):
        print("stream eval sed: give event files or --audio, not both or neither", file=sys.stderr)
        return 2
    code = 0
    if args.audio:
        out = args.out or Path(tempfile.mkdtemp(prefix="stream-sed-"))
        code = detect.run(argparse.Namespace(audio=args.audio, out=out, rules=args.rules, hop=None, scores=True))
        args.hypotheses = [out]
    refs = _files(args.reference, lambda p: p.suffix in REFERENCE_SUFFIXES and not p.name.endswith(".events.tsv"))
    references = {_stem(p): read_events(p) for p in refs}
    tsvs = _files(args.hypotheses, lambda p: p.name.endswith(".events.tsv"))
    hypotheses = {_stem(p): read_events(p) for p in tsvs}
    scored = sorted(set(references) & set(hypotheses))
    if not scored:
        print(f"stream eval sed: no event file matches a reference stem ({sorted(references)[:5]}...)",
              file=sys.stderr)
        return 1
    missing = sorted(set(references) - set(hypotheses))
    if missing:
        print(f"stream eval sed: note: {len(missing)} references without events are skipped ({missing[:5]})",
              file=sys.stderr)
    labels = args.labels.split(",") if args.labels else sorted({e[2] for f in scored for e in references[f]})
    durations, starts = {}, {}
    for tsv in tsvs:
        stem = _stem(tsv)
        events = _jsonl(tsv)
        npz = tsv.with_name(f"{stem}.scores.npz")
        durations[stem] = float(np.load(npz)["duration"]) if npz.exists() else max(
            [e["t_publish"] for e in events] or [0.0])
        starts[stem] = [(e["t_audio"], e["t_publish"], e["rule"]) for e in events if e["type"] == "sound.start"]
    report = score({f: references[f] for f in scored}, hypotheses, labels, durations, starts)
    print(format_report(report))
    if args.plots:
        import tomllib

        args.plots.mkdir(parents=True, exist_ok=True)
        rules_file = args.rules or Path(__file__).resolve().parents[2] / "configs" / "alerts.toml"
        rules = tomllib.loads(Path(rules_file).read_text()).get("rules", {})
        thresholds = {name: float(r["threshold"]) for name, r in rules.items() if "threshold" in r}
        for tsv in tsvs:
            stem, npz = _stem(tsv), tsv.with_name(f"{_stem(tsv)}.scores.npz")
            if stem in scored and npz.exists():
                with np.load(npz) as f:
                    plot_scores(args.plots / f"{stem}.png", stem, f["times"], f["scores"], [str(r) for r in f["rules"]],
                                references[stem], hypotheses[stem], thresholds)
    return code
