"""`stream eval chords`: chord-recognition scores of .lab files against reference .lab files (mir_eval).

Scores are duration-weighted frame accuracies over the reference's span: majmin (root and major/minor quality;
other qualities in the reference are mapped, chords mir_eval cannot reduce are skipped), root, and mirex (the
estimate shares at least three pitch classes with the reference; with triads, the same chord). Files are matched
by stem; the total weights each file by its duration.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

METRICS = ("majmin", "root", "mirex")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("chords", help="chord scores (mir_eval majmin / root / mirex) against reference .lab files")
    p.add_argument("hypotheses", nargs="*", type=Path, metavar="LAB", help=".lab files or folders of them")
    p.add_argument("--reference", type=Path, required=True, metavar="DIR", help="folder of reference <stem>.lab")
    p.add_argument("--audio", nargs="+", type=Path, metavar="AUDIO",
                   help="run the chord recogniser on these files first (instead of giving LAB files)")
    p.add_argument("--out", type=Path, metavar="DIR", help="with --audio: keep the .lab files here")
    p.set_defaults(func=run)


def score_lab(reference: Path, hypothesis: Path) -> tuple[float, dict[str, float]]:
    """(reference duration s, {metric: accuracy}) of one estimate."""
    import mir_eval

    ref_iv, ref_lab = mir_eval.io.load_labeled_intervals(str(reference))
    est_iv, est_lab = mir_eval.io.load_labeled_intervals(str(hypothesis))
    scores = mir_eval.chord.evaluate(ref_iv, ref_lab, est_iv, est_lab)
    return float(ref_iv.max() - ref_iv.min()), {m: float(scores[m]) for m in METRICS}


def run(args: argparse.Namespace) -> int:
    import tempfile

    from stream.errors import ConfigError

    labs = [p for h in args.hypotheses for p in (sorted(h.glob("*.lab")) if h.is_dir() else [h])]
    if args.audio:
        from stream.commands.chords import run as run_chords

        out = args.out or Path(tempfile.mkdtemp(prefix="stream-chords-"))
        run_chords(argparse.Namespace(audio=args.audio, out=out))
        labs += sorted(out.glob("*.lab"))
    if not labs:
        raise ConfigError("no .lab files to score: give LAB files or folders, or --audio")
    rows, total, weight = [], dict.fromkeys(METRICS, 0.0), 0.0
    for lab in labs:
        reference = args.reference / lab.name
        if not reference.is_file():
            print(f"{lab}: no reference {reference}; skipped", file=sys.stderr)
            continue
        duration, scores = score_lab(reference, lab)
        rows.append((lab.stem, duration, scores))
        weight += duration
        for m in METRICS:
            total[m] += duration * scores[m]
    if not rows:
        raise ConfigError(f"none of the {len(labs)} .lab files has a reference in {args.reference}")
    print(f"{'file':32s} {'dur s':>7s} " + " ".join(f"{m:>7s}" for m in METRICS))
    for stem, duration, scores in rows:
        print(f"{stem:32s} {duration:7.1f} " + " ".join(f"{scores[m]:7.3f}" for m in METRICS))
    print(f"{'total':32s} {weight:7.1f} " + " ".join(f"{total[m] / weight:7.3f}" for m in METRICS))
    return 0
