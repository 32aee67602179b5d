"""Fingerprint identification over an index of rendered tracks: accuracy within 5 s under noise, gain and speed
changes, and false matches on unindexed audio. One run, through the live node's code (`match_file`).

    .venv/bin/python bench/music_render.py --out ~/.cache/stream/music-fp --corpus 110 --grooves 110 --seed 1
    nice .venv/bin/python bench/fingerprint.py --set ~/.cache/stream/music-fp --split report

Index: every rendered track of the set except `--held-out` of them (chosen by a hash of the id), which join the
unindexed audio with the real recordings of `$STREAM_DATA_DIR/music/` (26 excerpts) and the AMI meeting clips.
Queries: one 10 s excerpt per indexed track of the split (start drawn with a fixed seed), resampled for the speed
change (pitch and tempo together, as a turntable or a pitched-up broadcast), white noise at the SNR, a gain drawn
in [0.05, 1], written at 16 kHz. Correct = the node's first event comes within 5 s, names the track, and puts the
offset within 0.5 s (`stream eval fingerprint`'s rule). RTF = the node's CPU time per audio second (file decoding
included); index build time per audio second is printed too.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

sys.path.insert(0, str(Path(__file__).parent))
from music_render import load_tracks  # noqa: E402

from nodes.capture.files import audio_files, read_blocks  # noqa: E402
from nodes.fingerprint.files import file_hashes  # noqa: E402
from nodes.fingerprint.index import FingerprintIndex  # noqa: E402
from stream.commands.eval_fingerprint import score_query, summarise  # noqa: E402
from stream.paths import data_dir  # noqa: E402

QUERY_S, RATE = 10.0, 16000
CONDITIONS = [  # (name, speed, snr dB)
    ("10 dB SNR", 1.0, 10.0),
    ("10 dB SNR, 5 % slow", 0.95, 10.0),
    ("10 dB SNR, 5 % fast", 1.05, 10.0),
]


def make_query(audio: np.ndarray, rate: int, start: float, speed: float, snr_db: float | None,
               rng: np.random.Generator) -> np.ndarray:
    x = audio[round(start * rate):round((start + QUERY_S * speed + 0.5) * rate)]
    x = soxr.resample(x, rate * speed, RATE)[:round(QUERY_S * RATE)]  # `speed` times faster, at 16 kHz
    if snr_db is not None:
        noise = rng.normal(size=x.size).astype(np.float32)
        x = x + noise * np.sqrt(np.mean(x ** 2) / 10 ** (snr_db / 10))
    return (x * rng.uniform(0.05, 1.0) / max(np.abs(x).max(), 1e-6)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", type=Path, required=True, help="folder written by bench/music_render.py")
    parser.add_argument("--split", choices=["tune", "report"], default="report")
    parser.add_argument("--held-out", type=int, default=20, help="rendered tracks kept out of the index")
    parser.add_argument("--min-hits", type=int, help="override the node's min_hits (tuning)")
    parser.add_argument("--margin", type=float, help="override the node's margin (tuning)")
    args = parser.parse_args()
    from nodes.fingerprint.node import FingerprintConfig

    overrides = {k: v for k, v in (("min_hits", args.min_hits), ("margin", args.margin)) if v is not None}
    config = FingerprintConfig(**overrides)

    rendered = sorted((t for t in load_tracks(args.set) if t.kind == "rendered"),
                      key=lambda t: hashlib.sha1(t.id.encode()).hexdigest())
    held, indexed = rendered[:args.held_out], rendered[args.held_out:]
    start = time.perf_counter()
    built, seconds = [], 0.0
    for t in indexed:
        hashes, duration = file_hashes(Path(t.audio))
        built.append((t.id, duration, hashes))
        seconds += duration
    index = FingerprintIndex.empty().add(built)
    build = time.perf_counter() - start
    print(f"index: {len(index.names)} tracks, {seconds / 60:.0f} min, {len(index.hash)} hashes "
          f"({len(index.hash) / seconds:.0f}/s), built in {build:.0f} s (RTF {build / seconds:.4f})", flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="bench-fp-"))
    targets = [t for t in indexed if t.split == args.split]
    rows = []
    for name, speed, snr in CONDITIONS:
        rng = np.random.default_rng(0)
        results, cpu = [], 0.0
        for t in targets:
            audio, rate = sf.read(t.audio, dtype="float32")
            audio = audio if audio.ndim == 1 else audio.mean(axis=1)
            begin = float(rng.uniform(0, max(0.0, len(audio) / rate - QUERY_S * speed - 1)))
            path = tmp / f"{t.id}.wav"
            sf.write(path, make_query(audio, rate, begin, speed, snr, rng), RATE)
            started = time.process_time()
            results.append(score_query(path, t.id, begin, index, config))
            cpu += time.process_time() - started
            if results[-1].false_matches or results[-1].first_correct is None:
                print(f"  {name}: {t.id} at {begin:.1f} s -> {results[-1].named or 'no match'}", flush=True)
        s = summarise(results, 5.0)
        print(f"{name}: {s['correct']} of {s['queries']} correct within 5 s ({100 * s['accuracy']:.1f} %), "
              f"median {s['p50_time_s']:.1f} s, wrong-track events {s['false_matches_indexed']:.0f}, "
              f"RTF {s['rtf']:.4f} wall, {cpu / (QUERY_S * len(targets)):.4f} CPU", flush=True)
        rows.append((name, s | {"cpu_rtf": cpu / (QUERY_S * len(targets))}))

    unindexed = [Path(t.audio) for t in held]
    unindexed += audio_files([data_dir() / "music" / "audio", data_dir() / "diarization" / "ami"])
    results, cpu = [], 0.0
    for path in unindexed:
        wav = tmp / f"u-{path.stem}.wav"
        sf.write(wav, np.concatenate(list(read_blocks(path, RATE))), RATE)
        started = time.process_time()
        results.append(score_query(wav, "", 0.0, index, config))
        cpu += time.process_time() - started
        if results[-1].named:
            print(f"  unindexed {path.stem} -> {results[-1].named}", flush=True)
    u = summarise(results, 5.0)
    u_cpu = cpu / (60 * u["unindexed_minutes"])
    print(f"unindexed: {u['unindexed_minutes']:.1f} min ({len(held)} held-out renders, real music, AMI speech), "
          f"false matches {u['false_matches_unindexed']:.0f}, RTF {u['rtf']:.4f} wall, {u_cpu:.4f} CPU")
    print(f"\nsplit {args.split}, min_hits {config.min_hits}, margin {config.margin}, load average "
          f"{os.getloadavg()[0]:.1f}; RTF = CPU s per audio s of the node (wall time is load-dependent)")
    print("| condition | queries | correct within 5 s | median time to match s | wrong-track events | RTF |")
    print("|---|---|---|---|---|---|")
    for name, s in rows:
        print(f"| {name} | {s['queries']} | {100 * s['accuracy']:.1f} % | {s['p50_time_s']:.1f} | "
              f"{s['false_matches_indexed']:.0f} | {s['cpu_rtf']:.4f} |")
    print(f"| unindexed audio, {u['unindexed_minutes']:.1f} min | - | - | - | {u['false_matches_unindexed']:.0f} "
          f"false matches | {u_cpu:.4f} |")


if __name__ == "__main__":
    main()
