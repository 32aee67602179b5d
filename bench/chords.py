"""Chord recognition on the music development set: ours (the live node's code) vs a template baseline, one run.

    .venv/bin/python bench/music_render.py --out ~/.cache/stream/music-dev        # once: render the set
    nice .venv/bin/python bench/chords.py --set ~/.cache/stream/music-dev --split report

Every item of the split with a chord .lab (rendered corpus pieces and grooves, and the real Beatles excerpts of
`$STREAM_DATA_DIR/music/`) is scored with mir_eval (majmin, root, mirex), duration-weighted per group and overall.
RTF = our wall time (and CPU time) per audio second through `chords_file` (the ChordsNode on a simulated clock).

The baseline is the textbook recipe (as in librosa's chord examples), written out here: an STFT chromagram (power
folded to the nearest pitch class, 55 Hz-4 kHz, no tuning estimate, max-normalised), cosine with binary major/minor
templates, N on near-silent frames, then a centred majority vote over 1 s (offline, so it sees the future).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from music_render import load_tracks  # noqa: E402

from nodes.capture.files import read_blocks  # noqa: E402
from nodes.chords.files import chords_file, segments_from_changes, write_lab  # noqa: E402
from nodes.chords.recognize import LABELS, NO_CHORD  # noqa: E402
from stream.commands.eval_chords import METRICS, score_lab  # noqa: E402

BASE_RATE, BASE_FFT, BASE_HOP = 22050, 4096, 1024
BASE_SMOOTH_S = 1.0


def template_baseline(path: Path) -> list:
    """Segments from the binary-template baseline (see the module docstring)."""
    audio = np.concatenate(list(read_blocks(path, BASE_RATE)))
    padded = np.pad(audio, BASE_FFT // 2)
    n = 1 + (len(padded) - BASE_FFT) // BASE_HOP
    frames = padded[np.arange(BASE_FFT)[None, :] + BASE_HOP * np.arange(n)[:, None]] * np.hanning(BASE_FFT)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    freqs = np.fft.rfftfreq(BASE_FFT, 1 / BASE_RATE)
    keep = (freqs >= 55) & (freqs <= 4000)
    pc = np.round(12 * np.log2(freqs[keep] / 440.0) + 9).astype(int) % 12
    chroma = np.stack([power[:, keep][:, pc == k].sum(axis=1) for k in range(12)], axis=1)
    energy = chroma.max(axis=1, keepdims=True)
    chroma = chroma / np.maximum(energy, 1e-12)
    templates = np.zeros((24, 12))
    for root in range(12):
        templates[root, [root, (root + 4) % 12, (root + 7) % 12]] = 1
        templates[12 + root, [root, (root + 3) % 12, (root + 7) % 12]] = 1
    cos = (chroma @ templates.T) / np.sqrt(3) / np.maximum(np.linalg.norm(chroma, axis=1, keepdims=True), 1e-9)
    states = cos.argmax(axis=1)
    states[energy[:, 0] < 1e-6 * energy.max()] = NO_CHORD
    half = round(BASE_SMOOTH_S * BASE_RATE / BASE_HOP / 2)
    onehot = np.eye(len(LABELS))[states]
    votes = np.cumsum(np.pad(onehot, ((half + 1, half), (0, 0))), axis=0)
    states = (votes[2 * half + 1:] - votes[:-2 * half - 1]).argmax(axis=1)
    times = np.arange(n) * BASE_HOP / BASE_RATE
    changes = [(t, LABELS[s]) for k, (t, s) in enumerate(zip(times, states)) if k == 0 or s != states[k - 1]]
    return segments_from_changes(changes, len(audio) / BASE_RATE)


def group(track) -> str:
    return "recorded (Beatles)" if track.kind == "recorded" else f"rendered {track.category}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", type=Path, required=True, help="folder written by bench/music_render.py")
    parser.add_argument("--split", choices=["tune", "report", "all"], default="report")
    args = parser.parse_args()
    tracks = [t for t in load_tracks(args.set, None if args.split == "all" else args.split) if t.chords]
    out = Path(tempfile.mkdtemp(prefix="bench-chords-"))
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    elapsed = cpu = audio_s = 0.0
    for t in tracks:
        started = time.process_time()
        ours = chords_file(Path(t.audio))
        cpu += time.process_time() - started
        elapsed += ours.elapsed
        audio_s += ours.duration
        write_lab(out / f"{t.id}.ours.lab", ours.segments)
        write_lab(out / f"{t.id}.base.lab", template_baseline(Path(t.audio)))
        duration, ours_scores = score_lab(Path(t.chords), out / f"{t.id}.ours.lab")
        _, base_scores = score_lab(Path(t.chords), out / f"{t.id}.base.lab")
        print(f"{t.id:36s} {group(t):22s} ours majmin {ours_scores['majmin']:.3f}  template {base_scores['majmin']:.3f}",
              flush=True)
        for name in (group(t), "all"):
            sums[name]["seconds"] += duration
            sums[name]["files"] += 1
            for m in METRICS:
                sums[name][f"ours {m}"] += duration * ours_scores[m]
                sums[name][f"base {m}"] += duration * base_scores[m]
    print(f"\nsplit {args.split}: {len(tracks)} files, {audio_s:.0f} s; ours: RTF {elapsed / audio_s:.4f} wall, "
          f"{cpu / audio_s:.4f} CPU s per audio s (chords_file: decoding, resampling and the node; load average "
          f"{os.getloadavg()[0]:.1f})")
    print("| group | files | minutes | majmin ours | majmin template | root ours | root template | mirex ours | mirex template |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in sorted(sums, key=lambda n: (n == "all", n)):
        s = sums[name]
        cells = " | ".join(f"{s[f'{who} {m}'] / s['seconds']:.3f}" for m in METRICS for who in ("ours", "base"))
        print(f"| {name} | {s['files']:.0f} | {s['seconds'] / 60:.1f} | {cells} |")


if __name__ == "__main__":
    main()
