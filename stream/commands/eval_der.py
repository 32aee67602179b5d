"""`stream eval der`: diarisation error rate of RTTM outputs (or of `stream diarize` run now) against references.

Prints DER (no collar and +-0.25 s collar, overlap scored) and JER per file and pooled, with the UEM applied;
with --plots, one timeline PNG per file (reference speakers above, hypothesis below).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stream.rttm import FormatError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("der", help="diarisation error rate (DER, JER) against RTTM/UEM references")
    p.add_argument("hypotheses", nargs="*", type=Path, metavar="RTTM",
                   help="hypothesis RTTM files or folders of them (leave out with --audio); in folders, "
                   "<stem>.rttm files, or <stem>.refined.rttm with --refined")
    p.add_argument("--refined", action="store_true", help="score the .refined.rttm files of the folders given")
    p.add_argument("--reference", type=Path, required=True, metavar="RTTM", help="reference RTTM (all files)")
    p.add_argument("--uem", type=Path, metavar="UEM", help="scored regions; without it, the whole reference")
    p.add_argument("--audio", nargs="+", type=Path, metavar="AUDIO",
                   help="run `stream diarize` on these files/folders first and score its output")
    p.add_argument("--out", type=Path, metavar="DIR", help="with --audio: keep the RTTMs here")
    p.add_argument("--latency", type=float, default=0.5, metavar="S", help="with --audio: latency (default 0.5)")
    p.add_argument("--refine", action="store_true", help="with --audio: also score the refined output")
    p.add_argument("--enrolled", type=Path, metavar="DB", help="with --audio: enrolment store")
    p.add_argument("--max-speakers", type=int, metavar="N", help="with --audio: most speakers per file")
    p.add_argument("--segmentation", metavar="WEIGHTS", default="",
                   help="with --audio: fine-tuned segmentation weights (default segmentation-3.0)")
    p.add_argument("--plots", type=Path, metavar="DIR", help="write <uri>.png timelines here")
    p.set_defaults(func=run)


def _rttms(paths: list[Path], refined: bool) -> list[Path]:
    """RTTM files given, or in the folders given: online ones (<stem>.rttm) or refined ones (<stem>.refined.rttm)."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out += sorted(p for p in path.glob("*.rttm") if p.name.endswith(".refined.rttm") == refined)
        elif path.is_file():
            out.append(path)
        else:
            raise FormatError(f"{path}: no such RTTM file or folder")
    return out


def run(args: argparse.Namespace) -> int:
    import tempfile

    from stream.rttm import read_rttm, read_uem

    if bool(args.hypotheses) == bool(args.audio):
        print("stream eval der: give hypothesis RTTMs or --audio, not both or neither", file=sys.stderr)
        return 2
    references = read_rttm(args.reference)
    uems = read_uem(args.uem) if args.uem else {}
    with tempfile.TemporaryDirectory(prefix="stream-der-") as scratch:  # removed at the end unless --out
        return _score(args, references, uems, args.out or Path(scratch))


def _score(args: argparse.Namespace, references: dict, uems: dict, out: Path) -> int:
    from nodes.diarization.evaluate import format_table, plot_timelines, score
    from stream.commands import diarize
    from stream.rttm import read_rttm, rttm_uri

    runs: dict[str, list[Path]] = {}
    code = 0
    if args.audio:
        code = diarize.run(argparse.Namespace(audio=args.audio, out=out, latency=args.latency, refine=args.refine,
                                              enrolled=args.enrolled, max_speakers=args.max_speakers,
                                              segmentation=args.segmentation))
        runs[f"online, latency {args.latency:g} s"] = _rttms([out], refined=False)
        if args.refine:
            runs["refined"] = _rttms([out], refined=True)
    else:
        runs["hypothesis"] = _rttms(args.hypotheses, refined=args.refined)
    for name, paths in runs.items():
        hypotheses = {uri: turns for p in paths for uri, turns in read_rttm(p).items()}
        # a file with no speech writes an empty RTTM: its uri is the file stem
        hypotheses.update({rttm_uri(p.name.removesuffix(".rttm").removesuffix(".refined")): [] for p in paths
                           if not p.read_text().strip()})
        scored = {uri: turns for uri, turns in references.items() if uri in hypotheses}
        if not scored:
            print(f"stream eval der: no hypothesis uri matches the reference ({sorted(references)[:5]}...)",
                  file=sys.stderr)
            return 1
        unscored = sorted(set(references) - set(scored))
        if unscored:
            print(f"stream eval der: note: {len(scored)} of {len(references)} reference files scored; no hypothesis "
                  f"for {', '.join(unscored[:5])}{' ...' if len(unscored) > 5 else ''}", file=sys.stderr)
        print(f"\n{name}: DER/JER in %, overlap scored, {'UEM applied' if uems else 'no UEM'}")
        print(format_table(score(scored, hypotheses, uems)))
        if args.plots:
            args.plots.mkdir(parents=True, exist_ok=True)
            tag = "" if name == "hypothesis" else (".refined" if name == "refined" else ".online")
            for uri in scored:
                plot_timelines(args.plots / f"{uri}{tag}.png", uri, references[uri], hypotheses[uri],
                               uems.get(uri), title=f"{uri} ({name})")
    return code
