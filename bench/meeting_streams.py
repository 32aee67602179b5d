"""Concurrent live meeting streams on this machine (bench/RESULTS.md, "## Live meeting graph").

N capture nodes (the 12 AMI clips in turn, looped, at real-time pace, `--block-ms` blocks) feed `--segmenters`
multi-stream segmentation nodes (streams dealt round-robin; windows ready together batched up to `--max-batch`,
waiting at most `--max-wait-ms`), then one diarization node (latency 0.5 s, step 0.5 s) and a JSONL sink. Once
every node is up and `--warmup` seconds have passed, a steady window of `--seconds` is measured:
- windows clustered in the window / expected (2 per stream per second);
- window lag: capture of a window's end -> its receipt by the diarization node (p50/p99 from the histogram's
  buckets, so "<= bucket bound"): how far the models run behind real time;
- turn latency: capture of a turn's end -> its speaker.turn event published (p50/p99 of the events);
- CPU: cores busy in the segmentation node(s) and in the whole graph; the load average of the machine.
N is sustained when nothing was dropped, >= 98 % of the expected windows were clustered and p99 turn latency is
under 2 s (0.5 s latency + 0.5 s step + 1 s slack). The loop stops at the first N that is not sustained.
With --sed, the first stream also feeds a `sed` node (YAMNet + configs/alerts.toml, the node's hop): the line adds its
tags lag (end of a 1 s stretch of patches -> its sound.tags published, p50/p99: how far YAMNet runs behind real
time) and the cores it keeps busy (= its real-time factor for that one stream); sustained also needs >= 98 % of the
expected sound.tags and their p99 lag under 1 s.
With --music MODE (the issue-20 line "the full graph on one stream stays real time"), the first stream also feeds the
music nodes: `beats` (mode MODE), `chords` and `fingerprint` (an index of the 26 recordings of
../shared/data/music/, built at start). That stream then plays a mix made at start, looped: an AMI meeting clip, a
smoke alarm, an indexed pop song and a Beatles song (speech, an alert, music for every node). The line adds each
music node's cores busy (its process: the runtime's receiving, checking and publishing included), its CPU
real-time factor in `process()` (the node's own work: `stream_node_process_cpu_seconds` over the window's seconds) and
its input lag (capture of a block -> its receipt by the node, p99 from the histogram's buckets): a node that falls
behind shows a growing lag or drops. Beat latency: a `beat` event's publish time at the sink minus the beat's own
time (negative: announced before the beat sounded, as the tracker predicts beats). Sustained also needs every music
node's p99 input lag under 1 s and nothing dropped there.

    .venv/bin/python -m bench.meeting_streams [--streams 1,4,8,12,16,20,24] [--embed-every 1] [--segmenters 1] [--sed]
    .venv/bin/python -m bench.meeting_streams --streams 1 --sed --music crnn-tuned --block-ms 20 --seconds 120
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import soundfile as sf
import soxr
from prometheus_client import CollectorRegistry

from nodes.beats.tracker import MODES
from nodes.fingerprint.files import file_hashes
from nodes.fingerprint.index import FingerprintIndex
from nodes.sed.detector import DEFAULT_HOP
from stream.graph import Supervisor, load_graph
from stream.metrics import run_registry
from stream.paths import data_dir

STEP_S = 0.5  # s between windows of a stream
MUSIC_NODES = ("beats", "chords", "fingerprint")
MIX = ("diarization/ami/dev01.flac", "sed/dev/clips/smoke_alarm/audioset_1WFLYqsLvv0_0.flac",
       "music/audio/tbd_easy_pop.flac", "music/audio/beatles_help.flac")  # the first stream's audio with --music


def music_inputs(folder: Path) -> tuple[Path, Path]:
    """(the first stream's mix at 16 kHz, a fingerprint index of ../shared/data/music/audio) for --music."""
    parts = []
    for name in MIX:
        x, rate = sf.read(data_dir() / name, dtype="float32", always_2d=True)
        parts.append(soxr.resample(x.mean(axis=1), rate, 16000))
    mix = folder / "mix.flac"
    sf.write(mix, np.concatenate(parts), 16000)
    songs = sorted((data_dir() / "music" / "audio").glob("*.flac"))
    index = folder / "fingerprints"
    tracks = []
    for song in songs:
        hashes, seconds = file_hashes(song)
        tracks.append((song.stem, seconds, hashes))
    FingerprintIndex.empty().add(tracks).save(index)
    return mix, index


def segmenters(n: int, args: argparse.Namespace) -> int:
    """Segmentation node processes for n streams (never more than streams)."""
    return min(n, args.segmenters)


def graph_toml(n: int, args: argparse.Namespace, out: Path, music: tuple[Path, Path] | None = None) -> str:
    clips = sorted((data_dir() / "diarization" / "ami").glob("*.flac"))
    if music:
        clips[0] = music[0]
    parts = ["[graph]\nname = \"meeting-bench\"\nhwm = 5000\n[metrics]\nport = 0\n"]
    for i in range(n):
        parts.append(f'[[nodes]]\nname = "cap{i:02d}"\nkind = "capture"\nconfig = {{ source = "file", path = '
                     f'"{clips[i % len(clips)]}", loop = true, realtime = true, block_ms = {args.block_ms}, '
                     f'stream = "m{i:02d}" }}\n')
    for k in range(segmenters(n, args)):
        inputs = ", ".join(f'"cap{i:02d}"' for i in range(k, n, segmenters(n, args)))
        parts.append(f'[[nodes]]\nname = "seg{k}"\nkind = "segmentation"\ninputs = [{inputs}]\nconfig = {{ '
                     f'max_batch = {args.max_batch}, max_wait_ms = {args.max_wait_ms}, '
                     f'embed_every = {args.embed_every} }}\n')
    if args.sed:
        parts.append(f'[[nodes]]\nname = "sed"\nkind = "sed"\ninputs = ["cap00"]\n'
                     f'config = {{ hop = {DEFAULT_HOP}, tags_every = 1.0 }}\n')
    if music:
        parts.append(f'[[nodes]]\nname = "beats"\nkind = "beats"\ninputs = ["cap00"]\n'
                     f'config = {{ mode = "{args.music}" }}\n'
                     f'[[nodes]]\nname = "chords"\nkind = "chords"\ninputs = ["cap00"]\n'
                     f'[[nodes]]\nname = "fingerprint"\nkind = "fingerprint"\ninputs = ["cap00"]\n'
                     f'config = {{ index = "{music[1]}" }}\n')
    segs = ", ".join(f'"seg{k}"' for k in range(segmenters(n, args)))
    parts.append(f'[[nodes]]\nname = "diarization"\nkind = "diarization"\ninputs = [{segs}]\n'
                 f'config = {{ latency = 0.5 }}\n[[sinks]]\nkind = "jsonl"\npath = "{out}"\n')
    return "\n".join(parts)


def snapshot(run_dir: Path, segmenters: int, music: bool = False) -> dict:
    """Windows clustered so far, messages dropped so far, buckets of the window lag histogram (read now); with
    `music`, each music node's drops and input lag buckets too."""
    reg = run_registry(run_dir / "metrics")

    def value(name: str, **labels: str) -> float:
        return reg.get_sample_value(name, labels) or 0.0

    snap = {"windows": value("stream_messages_total", node="diarization", result="ok"),
            "dropped": sum(value("stream_messages_total", node=node, result="dropped")
                           for node in [*(f"seg{k}" for k in range(segmenters)), "diarization"]),
            "lag": buckets(reg, "stream_transport_latency_seconds", node="diarization")}
    for node in MUSIC_NODES if music else ():
        snap[node] = {"dropped": value("stream_messages_total", node=node, result="dropped"),
                      "lag": buckets(reg, "stream_transport_latency_seconds", node=node),
                      "process_cpu_s": value("stream_node_process_cpu_seconds_total", node=node)}
    return snap


def buckets(reg: CollectorRegistry, name: str, **labels: str) -> np.ndarray:
    """[(upper bound s, cumulative count)] of a histogram's buckets."""
    rows = [(float(s.labels["le"]), s.value) for metric in reg.collect() for s in metric.samples
            if s.name == f"{name}_bucket" and all(s.labels.get(k) == v for k, v in labels.items())]
    return np.array(sorted(rows))


def bucket_quantile(start: np.ndarray, end: np.ndarray, q: float) -> float:
    """Upper bound of the bucket holding quantile q of the observations made between two snapshots."""
    counts = end[:, 1] - (start[:, 1] if len(start) else 0)
    if counts[-1] <= 0:
        return float("nan")
    return float(end[np.searchsorted(counts, q * counts[-1]), 0])


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


async def measure(folder: Path, n: int, args: argparse.Namespace) -> tuple[bool, str]:
    out = folder / "events.jsonl"
    music = music_inputs(folder) if args.music else None
    (folder / "g.toml").write_text(graph_toml(n, args, out, music))
    supervisor = Supervisor(load_graph(folder / "g.toml"), folder / "run")
    run = asyncio.ensure_future(supervisor.run())
    while len(supervisor.states) < len(supervisor.graph.nodes) or set(supervisor.states.values()) != {"ready"}:
        await asyncio.sleep(0.2)
    await asyncio.sleep(args.warmup)
    seg_pids = [supervisor.procs[f"seg{k}"].pid for k in range(segmenters(n, args))]
    sed_pids = [supervisor.procs["sed"].pid] if args.sed else []
    all_pids = [p.pid for p in supervisor.procs.values()]
    music_pids = {node: [supervisor.procs[node].pid] for node in MUSIC_NODES if music}
    snap0, t0 = snapshot(folder / "run", segmenters(n, args), bool(music)), time.time()
    cpu_seg0, cpu_all0, cpu_sed0 = cpu_seconds(seg_pids), cpu_seconds(all_pids), cpu_seconds(sed_pids)
    cpu_music0 = {node: cpu_seconds(pids) for node, pids in music_pids.items()}
    await asyncio.sleep(args.seconds)
    snap1, t1 = snapshot(folder / "run", segmenters(n, args), bool(music)), time.time()
    cpu_music = {node: (cpu_seconds(pids) - cpu_music0[node]) / (t1 - t0) for node, pids in music_pids.items()}
    cpu_seg, cpu_all = (cpu_seconds(seg_pids) - cpu_seg0) / (t1 - t0), (cpu_seconds(all_pids) - cpu_all0) / (t1 - t0)
    cpu_sed = (cpu_seconds(sed_pids) - cpu_sed0) / (t1 - t0)
    load = os.getloadavg()[0]
    supervisor.stopping.set()
    await run
    windows, dropped = snap1["windows"] - snap0["windows"], snap1["dropped"]
    lag0, lag1 = snap0["lag"], snap1["lag"]
    expected = n * (t1 - t0) / STEP_S
    events = [json.loads(line) for line in out.read_text().splitlines()]
    turns = np.array([e["t_publish"] - (e["t_capture"] + e["stop"] - e["start"]) for e in events
                      if e["type"] == "speaker.turn" and t0 <= e["t_publish"] < t1])
    p50, p99 = np.percentile(turns, [50, 99]) if len(turns) else (float("nan"), float("inf"))
    ok = dropped == 0 and windows >= 0.98 * expected and p99 < 2.0
    sed = ""
    if args.sed:
        tags = np.array([e["t_publish"] - (e["t_capture"] + e["duration"]) for e in events
                         if e["type"] == "sound.tags" and t0 <= e["t_publish"] < t1])
        t50, t99 = np.percentile(tags, [50, 99]) if len(tags) else (float("nan"), float("inf"))
        expected_tags = (t1 - t0) / (math.ceil(1.0 / DEFAULT_HOP - 1e-9) * DEFAULT_HOP)  # a stretch is whole patches >= 1 s
        ok = ok and len(tags) >= 0.98 * expected_tags - 1 and t99 < 1.0
        sed = f" {len(tags)}/{expected_tags:.0f} | {t50:.3f} | {t99:.3f} | {cpu_sed:.3f} |"
    for node in music_pids:
        lag99 = bucket_quantile(snap0[node]["lag"], snap1[node]["lag"], 0.99)
        ok = ok and snap1[node]["dropped"] == 0 and lag99 <= 1.0
        rtf = (snap1[node]["process_cpu_s"] - snap0[node]["process_cpu_s"]) / (t1 - t0)
        sed += f" {cpu_music[node]:.3f} | {rtf:.4f} | {lag99:.3f} | {snap1[node]['dropped']:.0f} |"
    if music:  # a beat event's t_capture is the beat's own time: negative = announced before it sounded
        beats = 1000 * np.array([e["t_publish"] - e["t_capture"] for e in events
                                 if e["type"] == "beat" and t0 <= e["t_publish"] < t1])
        sed += (f" {len(beats)} | {np.median(beats):.0f} / {np.percentile(beats, 95):.0f} |" if len(beats)
                else " 0 | - |")
    line = (f"| {n} | {windows:.0f}/{expected:.0f} | {dropped:.0f} | {bucket_quantile(lag0, lag1, 0.5):.2f} | "
            f"{bucket_quantile(lag0, lag1, 0.99):.2f} | {len(turns)} | {p50:.2f} | {p99:.2f} | {cpu_seg:.2f} |"
            f"{sed} {cpu_all:.2f} | {load:.0f} | {'yes' if ok else 'no'} |")
    return ok, line


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", default="1,4,8,12,16,20,24", help="stream counts to try, in order")
    parser.add_argument("--seconds", type=float, default=20.0, help="steady window per stream count, s")
    parser.add_argument("--warmup", type=float, default=10.0, help="s after every node is ready before measuring")
    parser.add_argument("--segmenters", type=int, default=1, help="segmentation node processes")
    parser.add_argument("--max-batch", type=int, default=8, help="windows per model call (power of two; 16 is slower per window than 8)")
    parser.add_argument("--max-wait-ms", type=float, default=100.0, help="ms a window may wait for a batch")
    parser.add_argument("--embed-every", type=int, default=1, help="embed at least every this many windows")
    parser.add_argument("--block-ms", type=float, default=100.0, help="capture block, ms")
    parser.add_argument("--sed", action="store_true", help="add a sed node on the first stream")
    parser.add_argument("--music", choices=MODES, help="add beats (this mode), chords and fingerprint nodes on the "
                        "first stream, which then plays a mix of speech, an alarm and music")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {vars(args)}")
    sed = (" sound.tags/expected | tags lag p50 s | p99 s | sed cores busy |", "---|---|---|---|") if args.sed else ("", "")
    if args.music:
        columns = "".join(f" {node} cores busy | {node} CPU RTF in process() | {node} input lag p99 s (<=) | "
                          f"{node} dropped |" for node in MUSIC_NODES)
        sed = (sed[0] + columns + " beat events | beat latency p50 / p95 ms |",
               sed[1] + "---|---|---|---|" * len(MUSIC_NODES) + "---|---|")
    print("| streams | windows clustered/expected | dropped | window lag p50 s (<=) | p99 s (<=) | turns | "
          f"turn latency p50 s | p99 s | segmentation cores busy |{sed[0]} graph cores busy | load | sustained |\n"
          f"|---|---|---|---|---|---|---|---|---|{sed[1]}---|---|---|", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-meeting-") as tmp:
        for n in (int(x) for x in args.streams.split(",")):
            folder = Path(tmp) / f"n{n}"
            folder.mkdir()
            ok, line = await measure(folder, n, args)
            print(line, flush=True)
            if not ok:
                break


if __name__ == "__main__":
    asyncio.run(main())
