"""`stream detect`: sound-event alerts in recordings, through the same detector as the live `sed` node.

Writes DIR/<stem>.events.tsv (onset, offset, rule: sed_eval's format) and DIR/<stem>.events.jsonl (every
sound.start / sound.stop / sound.tags event, times in seconds of the file).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

EPILOG = """outputs: DIR/<stem>.events.tsv, one finished alert per line: onset<TAB>offset<TAB>rule (seconds);
DIR/<stem>.events.jsonl, the events the live node would publish (stream/schemas/sound.*.json), on a clock that
starts at 0 with the file: t_publish - t_capture is the onset -> alert latency.
Inputs: WAV/FLAC/OGG/MP3 at any rate and channel count (down-mixed, resampled to 16 kHz); folders are recursed.
Rules: configs/alerts.toml unless --rules names another file of the same format (see the README)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("detect", help="sound-event alerts in audio files -> .events.tsv/.jsonl", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("audio", nargs="+", type=Path, metavar="AUDIO", help="audio files or folders")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the event files")
    p.add_argument("--rules", type=Path, metavar="FILE", help="alert rules TOML (default configs/alerts.toml)")
    p.add_argument("--hop", type=float, metavar="S", help="s between 0.96 s patches (default: the node's, 0.08)")
    p.add_argument("--scores", action="store_true",
                   help="also write DIR/<stem>.scores.npz: every rule's score per patch (`stream eval sed --plots`)")
    p.set_defaults(func=run)


def load(rules: Path | None, max_batch: int = 64):  # -> (Yamnet, list[Rule])
    """The model and the rules (shared with `stream eval sed` and `stream teach`)."""
    from nodes.sed.rules import DEFAULT_RULES, load_rules
    from nodes.sed.yamnet import load_yamnet
    from stream.models import use_compile_cache

    use_compile_cache()
    model = load_yamnet(max_batch=max_batch)
    return model, load_rules(rules or DEFAULT_RULES, model.class_names)


def write_outputs(out: Path, stem: str, result, scores: bool = False) -> None:  # nodes.sed.files.FileResult
    (out / f"{stem}.events.tsv").write_text("".join(f"{a:.3f}\t{b:.3f}\t{r}\n" for a, b, r in result.alerts()))
    with open(out / f"{stem}.events.jsonl", "w", encoding="utf-8") as f:
        for event in result.events:
            f.write(json.dumps(event, separators=(",", ":")) + "\n")
    if scores:
        import numpy as np

        np.savez(out / f"{stem}.scores.npz", times=result.times, scores=result.rule_scores,
                 rules=np.array(result.rules), duration=result.duration)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from nodes.capture.files import audio_files, open_audio
    from nodes.sed.detector import DEFAULT_HOP, hop_frames
    from nodes.sed.files import detect_file
    from stream.errors import StreamError

    started = time.perf_counter()
    args.hop = DEFAULT_HOP if args.hop is None else args.hop
    hop_frames(args.hop)
    try:
        files = audio_files(args.audio)
    except StreamError as exc:
        print(f"stream detect: {exc}", file=sys.stderr)
        return 1
    model, rules = load(args.rules)
    args.out.mkdir(parents=True, exist_ok=True)
    failed, audio = 0, 0.0
    for path in files:
        try:
            with open_audio(path) as f:
                total = f.frames / f.samplerate
            with tqdm(total=round(total, 1), unit="s", desc=path.name, leave=False,
                      disable=not sys.stderr.isatty(), file=sys.stderr) as bar:
                result = detect_file(path, model, rules, args.hop,
                                     progress=lambda t: bar.update(round(t, 1) - bar.n))
        except StreamError as exc:
            print(f"{path}: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        write_outputs(args.out, path.stem, result, args.scores)
        alerts = result.alerts()
        gated = ", ".join(f"{n} {why}" for why, n in sorted(result.gated.items()))
        print(f"{path}: {len(alerts)} alerts ({', '.join(sorted({r for _, _, r in alerts})) or 'none'}) in "
              f"{result.duration:.1f} s, RTF {result.elapsed / max(result.duration, 1e-9):.3f}"
              + (f"; patches gated: {gated}" if gated else ""))
        audio += result.duration
    if len(files) > 1 and audio > 0:
        done = time.perf_counter() - started
        print(f"{len(files) - failed} of {len(files)} files, {audio:.1f} s of audio in {done:.1f} s "
              f"(model loaded and compiled included): RTF {done / audio:.3f}")
    return 1 if failed else 0
