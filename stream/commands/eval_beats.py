"""`stream eval beats`: beat F-measure, CMLt, AMLt and P-score of .beats outputs (or of `stream beats` run now)
against reference .beats files, per file and averaged; with --audio also the p50 latency of the beat events."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("beats", help="beat tracking scores (mir_eval) against reference .beats files")
    p.add_argument("hypotheses", nargs="*", type=Path, metavar="BEATS",
                   help="hypothesis .beats files or folders of them (leave out with --audio)")
    p.add_argument("--reference", nargs="+", type=Path, required=True, metavar="REF",
                   help="reference .beats files or folders (matched to hypotheses by file stem)")
    p.add_argument("--audio", nargs="+", type=Path, metavar="AUDIO", help="run `stream beats` on these first")
    p.add_argument("--out", type=Path, metavar="DIR", help="with --audio: keep the .beats files here")
    p.add_argument("--mode", choices=("dp", "crnn", "crnn-tuned"), default="dp",
                   help="with --audio: front end (default dp)")
    p.add_argument("--model", type=int, choices=(1, 2, 3), default=1, help="with --audio, crnn: BeatNet model")
    p.add_argument("--plots", type=Path, metavar="DIR", help="write <stem>.png: activation, beats, reference")
    p.set_defaults(func=run)


def _beats_files(paths: list[Path]) -> dict[str, Path]:
    from stream.rttm import FormatError

    out: dict[str, Path] = {}
    for path in paths:
        if path.is_dir():
            out.update({p.stem: p for p in sorted(path.glob("*.beats"))})
        elif path.is_file():
            out[path.stem] = path
        else:
            raise FormatError(f"{path}: no such .beats file or folder")
    return out


def run(args: argparse.Namespace) -> int:
    import tempfile

    import numpy as np

    from nodes.beats.evaluate import BeatScores, plot, score
    from nodes.beats.files import read_beats
    from stream.commands import beats

    if bool(args.hypotheses) == bool(args.audio):
        print("stream eval beats: give hypothesis .beats files or --audio, not both or neither", file=sys.stderr)
        return 2
    references = _beats_files(args.reference)
    results = {}
    code = 0
    if args.audio:
        out = args.out or Path(tempfile.mkdtemp(prefix="stream-beats-"))
        code = beats.track(argparse.Namespace(audio=args.audio, out=out, mode=args.mode, model=args.model),
                           on_file=lambda path, result: results.__setitem__(path.stem, result))
        hypotheses = _beats_files([out])
    else:
        hypotheses = _beats_files(args.hypotheses)
    stems = sorted(set(hypotheses) & set(references))
    if not stems:
        print(f"stream eval beats: no hypothesis matches a reference by stem ({sorted(references)[:5]}...)",
              file=sys.stderr)
        return 1
    if args.plots:
        args.plots.mkdir(parents=True, exist_ok=True)
    print(f"\n{'file':32s} {'F':>6s} {'CMLt':>6s} {'AMLt':>6s} {'P':>6s} {'p50 lat ms':>10s}")
    scores, latencies = [], []
    for stem in stems:
        ref, est = read_beats(references[stem])[0], read_beats(hypotheses[stem])[0]
        s = score(ref, est)
        scores.append(s)
        result = results.get(stem)
        lat = f"{1000 * float(np.median(result.latencies)):10.0f}" if result and len(result.latencies) else f"{'-':>10s}"
        if result is not None:
            latencies.append(result.latencies)
        print(f"{stem[:32]:32s} {s.f_measure:6.3f} {s.cmlt:6.3f} {s.amlt:6.3f} {s.p_score:6.3f} {lat}")
        if args.plots:
            plot(args.plots / f"{stem}.png", f"{stem}: F {s.f_measure:.3f}", ref, est,
                 result.activation if result else None, result.fps if result else 0.0)
    m = BeatScores.mean(scores)
    pooled = np.concatenate(latencies) if latencies else np.zeros(0)
    lat = f"{1000 * float(np.median(pooled)):10.0f}" if len(pooled) else f"{'-':>10s}"
    print(f"{'mean of ' + str(len(stems)) + ' files':32s} {m.f_measure:6.3f} {m.cmlt:6.3f} {m.amlt:6.3f} "
          f"{m.p_score:6.3f} {lat}")
    missing = sorted(set(references) - set(hypotheses))
    if missing and not args.audio:
        print(f"(no hypothesis for {len(missing)} reference(s): {', '.join(missing[:5])})", file=sys.stderr)
    return code
