#!/usr/bin/env python3
"""Music: beats. One run on the REPORT half of the development set (bench/music_render.py): our online tracker
(`dp`, `crnn`, `crnn-tuned`: the file-mode code of the live node) and the peers (madmom online, BeatNet's own
online particle filter) on the same files, scored the same way (mir_eval, first 5 s not scored).

Prints one markdown table: F-measure overall and per category (expressive piano renders, ensemble renders,
drums/band renders + recordings, other recordings), CMLt, AMLt, P-score, tempo changes re-locked within 4 s, p50
beat-event latency (ours: audio heard when the event left minus the beat's time; 20 ms blocks) and real-time
factor (ours: CPU s / audio s of the process, as the machine is shared; peers: wall s / audio s as
music_peers.py measures it).

The peers run outside the project (madmom does not install beside our pins): give the Python of a venv set up as
../shared/peers/music_peers.py describes (plus `pip install pyaudio matplotlib` for BeatNet):

    python bench/music_render.py --out ~/.cache/stream/music-dev
    nice python bench/beats.py --set ~/.cache/stream/music-dev --peers-python /path/venv-music/bin/python
    (--peers-json FILE --peers-est DIR reuse a finished peers run)
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from music_render import Track, load_tracks  # noqa: E402

from nodes.beats.beatnet import weights  # noqa: E402
from nodes.beats.evaluate import score  # noqa: E402
from nodes.beats.files import read_beats, track_file  # noqa: E402
from nodes.beats.onset import RATE  # noqa: E402
from nodes.beats.tracker import TrackerConfig  # noqa: E402

PEERS = {"madmom_online": "madmom online (RNN + online DBN)", "beatnet_online": "BeatNet 1.1.3 online (PF)"}
PEERS_SCRIPT = Path(__file__).resolve().parents[2] / "shared" / "peers" / "music_peers.py"
GROUPS = {  # table column -> which tracks
    "piano": lambda t: t.category == "piano",
    "ensemble": lambda t: t.category == "ensemble",
    "drums/band": lambda t: t.category == "band",
    "other rec.": lambda t: t.category == "other",
    "rendered": lambda t: t.kind == "rendered",
    "recorded": lambda t: t.kind == "recorded",
}


def relock_s(reference: np.ndarray, estimate: np.ndarray, change: float, window: float = 0.07) -> float:
    """Seconds after a tempo change until the estimate is back on the reference grid for good: from then to the end
    of the reference, >= 90 % of reference beats have an estimate within 70 ms and >= 90 % of estimates a reference
    beat. inf if never."""
    end = reference[-1]
    for start in np.arange(change, end - 2.0, 0.25):
        ref = reference[reference >= start]
        est = estimate[(estimate >= start) & (estimate <= end + window)]
        if len(ref) < 3 or len(est) < 3:
            break
        hit_ref = np.mean([np.min(np.abs(est - r)) <= window for r in ref])
        hit_est = np.mean([np.min(np.abs(ref - e)) <= window for e in est])
        if hit_ref >= 0.9 and hit_est >= 0.9:
            return float(start - change)
    return float("inf")


def run_ours(tracks: list[Track], mode: str, rate: int) -> dict[str, dict]:
    params = weights(mode) if mode != "dp" else None
    out = {}
    for t in tracks:
        result = track_file(Path(t.audio), TrackerConfig(mode=mode), params, rate=rate)
        out[t.id] = {"beats": np.asarray([b.time for b in result.beats]), "latencies": result.latencies,
                     "wall_s": result.elapsed, "cpu_s": result.cpu, "dur_s": result.duration}
        print(f"[{mode}] {t.id}: {len(result.beats)} beats, CPU RTF {result.cpu / result.duration:.4f}",
              file=sys.stderr)
    return out


def run_peers(tracks: list[Track], python: str, json_path: Path, est_dir: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        with open(Path(tmp) / "tracks.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "kind", "audio", "beats", "chords", "duration_s"])
            w.writerows([t.id, t.kind, t.audio, t.beats, t.chords, t.duration_s] for t in tracks)
        subprocess.run([python, str(PEERS_SCRIPT), "--holdout", tmp, "--peers", ",".join(PEERS), "--no-chords",
                        "--save-est", str(est_dir), "--json", str(json_path)], check=True, stdout=subprocess.DEVNULL)


def load_peers(tracks: list[Track], json_path: Path, est_dir: Path) -> dict[str, dict[str, dict]]:
    res = json.loads(json_path.read_text())["beats"]
    out: dict[str, dict[str, dict]] = {}
    for peer, rows in res.items():
        out[peer] = {}
        for t in tracks:
            row, est = rows.get(t.id, {}), est_dir / peer / f"{t.id}.beats"
            if "F" in row and est.is_file():
                out[peer][t.id] = {"beats": np.loadtxt(est, ndmin=1), "wall_s": row["wall_s"], "dur_s": row["dur_s"]}
    return out


def table(tracks: list[Track], systems: dict[str, dict[str, dict]]) -> str:
    refs = {t.id: read_beats(Path(t.beats))[0] for t in tracks}
    counts = {g: sum(map(sel, tracks)) for g, sel in GROUPS.items()}
    head = ["system", f"F all ({len(tracks)})"] + [f"F {g} ({counts[g]})" for g in GROUPS] + \
        ["CMLt", "AMLt", "P", "tempo changes re-locked <= 4 s", "p50 latency ms", "RTF"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    changes = [t for t in tracks if t.change_s]
    for name, runs in systems.items():
        scored = {t.id: score(refs[t.id], runs[t.id]["beats"]) for t in tracks if t.id in runs}
        mean = lambda field, sel=lambda t: True: np.mean([getattr(scored[t.id], field) for t in tracks  # noqa: E731
                                                          if t.id in scored and sel(t)] or [np.nan])
        relocks = [relock_s(refs[t.id], runs[t.id]["beats"], float(c)) for t in changes if t.id in runs
                   for c in t.change_s.split(";")]
        latency = [x for t in tracks if "latencies" in runs.get(t.id, {}) for x in runs[t.id]["latencies"]]
        done = [runs[t.id] for t in tracks if t.id in runs]
        rtf = sum(r.get("cpu_s", r["wall_s"]) for r in done) / sum(r["dur_s"] for r in done)
        cells = [name, f"{mean('f_measure'):.3f}"] + [f"{mean('f_measure', sel):.3f}" for sel in GROUPS.values()] + \
            [f"{mean('cmlt'):.3f}", f"{mean('amlt'):.3f}", f"{mean('p_score'):.3f}",
             f"{sum(r <= 4 for r in relocks)}/{len(relocks)}",
             f"{1000 * np.median(latency):.0f}" if latency else "-", f"{rtf:.4f}"]
        failed = len(tracks) - len(scored)
        if failed:
            cells[0] += f" ({failed} failed)"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", type=Path, required=True, help="folder of bench/music_render.py (tracks.csv)")
    parser.add_argument("--split", default="report", choices=("tune", "report"))
    parser.add_argument("--peers-python", help="python of the peers' venv (runs music_peers.py)")
    parser.add_argument("--peers-json", type=Path, nargs="+", default=[], help="reuse: music_peers.py --json output(s)")
    parser.add_argument("--peers-est", type=Path, help="reuse: music_peers.py --save-est folder")
    parser.add_argument("--modes", default="dp,crnn,crnn-tuned")
    parser.add_argument("--rate", type=int, default=RATE, help="decode our input at this rate (Hz): 16000 is what "
                        "the meeting graphs feed the beats node, resampled in the tracker as live")
    parser.add_argument("--save", type=Path, help="write our runs (beats, latencies, times) to this JSON")
    parser.add_argument("--load", type=Path, help="reuse our runs from a --save JSON instead of running them")
    parser.add_argument("--common", action="store_true",
                        help="score only the tracks every system finished (a peer that failed on some)")
    args = parser.parse_args()
    tracks = load_tracks(args.set, args.split)
    started = time.time()
    systems: dict[str, dict[str, dict]] = {}
    if args.load:
        systems = {name: {i: {k: np.asarray(v) if isinstance(v, list) else v for k, v in r.items()}
                          for i, r in runs.items()} for name, runs in json.loads(args.load.read_text()).items()}
    else:
        for mode in args.modes.split(","):
            systems[f"ours {mode}"] = run_ours(tracks, mode, args.rate)
    if args.save:
        args.save.write_text(json.dumps({name: {i: {k: v.tolist() if isinstance(v, np.ndarray) else v
                                                    for k, v in r.items()} for i, r in runs.items()}
                                         for name, runs in systems.items()}))
    if args.peers_python:
        args.peers_json = [Path(tempfile.mkdtemp()) / "peers.json"]
        args.peers_est = args.peers_est or args.peers_json[0].parent / "est"
        run_peers(tracks, args.peers_python, args.peers_json[0], args.peers_est)
    for path in args.peers_json:
        for peer, runs in load_peers(tracks, path, args.peers_est).items():
            systems[PEERS.get(peer, peer)] = runs
    if args.common:
        tracks = [t for t in tracks if all(t.id in runs for runs in systems.values())]
    print(f"{args.split} half of {args.set}: {len(tracks)} tracks, {sum(t.duration_s for t in tracks):.0f} s; "
          f"{time.time() - started:.0f} s\n")
    print(table(tracks, systems))
    return 0


if __name__ == "__main__":
    sys.exit(main())
