"""Soak: hours of meeting audio through one graph, faster than real time, with its resources sampled
(bench/RESULTS.md, "## Reliability: faults and soak").

Faster than real time by width: `--streams` capture nodes (the AMI clips in turn, looped, at real-time pace in
`--block-ms` blocks, each its own stream id) feed `--segmenters` multi-stream segmentation nodes (batched, streams
dealt round-robin), one diarization node, one VAD node and the music/sound-event nodes present under nodes/
(`--extra`; each on every stream, or on the first `--extra-streams`: two cores cannot run them on as many streams),
then a JSONL sink; N streams put N hours of audio through the graph per hour. Every `--sample-s`: the RSS and open
file descriptors of every node process, the largest queue depth, messages dropped, and the speaker.turn latency
(capture of a turn's end -> event published) of the events of the interval. At the end, per node, the RSS slope
after `--warmup-s` (least squares, MiB per hour of audio through the graph) and the fd range; a plot of the four
series.

Flat means: every node's RSS slope under `--max-slope` MiB per audio hour, open fds within 4 of where they were
after the warm-up, nothing dropped, queues under the runner's bound (64); exit status 1 otherwise.

    .venv/bin/python -m bench.soak [--streams 8] [--audio-hours 24] [--max-minutes 60] [--sample-s 10]
                                   [--segmenters 1] [--extra-streams N] [--plot bench/soak.png]

`--max-minutes` bounds the wall time (a shared machine, a session's end): the run then reports the hours of
audio it reached, with the same slopes and checks. Node restarts (the supervisor's count) are reported too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil

from stream.graph import Supervisor, load_graph
from stream.metrics import run_registry
from stream.paths import REPO_ROOT, data_dir

EXTRA_KINDS = ("sed", "beats", "chords")  # the music / sound-event nodes, wherever their package exists
MAX_QUEUE = 64  # the runner's bound on messages taken off the sockets ahead of processing


def extras_present() -> list[str]:
    return [kind for kind in EXTRA_KINDS if (REPO_ROOT / "nodes" / kind / "node.py").is_file()]


def graph_toml(streams: int, extras: list[str], out: Path, extra_streams: int | None = None, segmenters: int = 1,
               block_ms: float = 100.0) -> str:
    """The soak graph: `streams` looped AMI captures dealt round-robin to `segmenters` multi-stream segmentation
    nodes, one diarization node, and the VAD and `extras` nodes on the first `extra_streams` streams (all: None)."""
    clips = sorted((data_dir() / "diarization" / "ami").glob("*.flac"))
    caps = [f"cap{i:02d}" for i in range(streams)]
    segs = [f"seg{j}" for j in range(segmenters)]
    parts = ['[graph]\nname = "soak"\nhwm = 5000\n[metrics]\nport = 0\n']
    for i, cap in enumerate(caps):
        parts.append(f'[[nodes]]\nname = "{cap}"\nkind = "capture"\nconfig = {{ source = "file", path = '
                     f'"{clips[i % len(clips)]}", loop = true, realtime = true, block_ms = {block_ms}, '
                     f'stream = "m{i:02d}" }}\n')
    for j, seg in enumerate(segs):
        inputs = ", ".join(f'"{c}"' for c in caps[j::segmenters])
        parts.append(f'[[nodes]]\nname = "{seg}"\nkind = "segmentation"\ninputs = [{inputs}]\n'
                     f'config = {{ max_batch = 8, max_wait_ms = 100.0 }}\n')
    seg_inputs = ", ".join(f'"{seg}"' for seg in segs)
    parts.append(f'[[nodes]]\nname = "diarization"\nkind = "diarization"\ninputs = [{seg_inputs}]\n'
                 'config = { latency = 0.5 }\n')
    inputs = ", ".join(f'"{c}"' for c in caps[:extra_streams])
    for kind in ["vad", *extras]:
        parts.append(f'[[nodes]]\nname = "{kind}"\nkind = "{kind}"\ninputs = [{inputs}]\n')
    parts.append(f'[[sinks]]\nkind = "jsonl"\npath = "{out}"\n')
    return "\n".join(parts)


@dataclass
class Samples:
    """The series sampled during a soak: wall s since start, and per node RSS (MiB) and open fds."""

    t: list[float] = field(default_factory=list)
    rss: dict[str, list[float]] = field(default_factory=dict)
    fds: dict[str, list[int]] = field(default_factory=dict)
    queue: list[float] = field(default_factory=list)
    dropped: list[float] = field(default_factory=list)
    latency_p99: list[float] = field(default_factory=list)


def metric_values(run_dir: Path, name: str) -> dict[str, float]:
    """Every sample of `name` by node (summed over the other labels)."""
    registry = run_registry(run_dir / "metrics")
    out: dict[str, float] = {}
    for metric in registry.collect():
        for s in metric.samples:
            if s.name == name:
                out[s.labels.get("node", "")] = out.get(s.labels.get("node", ""), 0.0) + s.value
    return out


def dropped_total(run_dir: Path) -> float:
    registry = run_registry(run_dir / "metrics")
    return sum(s.value for metric in registry.collect() for s in metric.samples
               if s.name == "stream_messages_total" and s.labels.get("result") == "dropped")


def turn_latencies(events: Path, offset: int, since: float) -> tuple[list[float], int]:
    """Latencies (s) of speaker.turn events published after `since` in the JSONL from byte `offset`; new offset."""
    with events.open("rb") as f:
        f.seek(offset)
        data = f.read()
    cut = data.rfind(b"\n") + 1
    out = []
    for line in data[:cut].splitlines():
        e = json.loads(line)
        if e["type"] == "speaker.turn" and e["t_publish"] >= since:
            out.append(e["t_publish"] - (e["t_capture"] + e["stop"] - e["start"]))
    return out, offset + cut


def slope_per_audio_hour(t: np.ndarray, values: np.ndarray, streams: int) -> float:
    """Least-squares slope of `values` over wall time `t` (s), per hour of audio through the graph."""
    if len(t) < 3:
        return float("nan")
    return float(np.polyfit(t, values, 1)[0]) * 3600 / streams


async def soak(streams: int, seconds: float, sample_s: float, folder: Path, extras: list[str],
               extra_streams: int | None = None, segmenters: int = 1, block_ms: float = 100.0
               ) -> tuple[Samples, dict[str, int]]:
    """Run the soak graph for `seconds` of wall time once every node is ready; the sampled series and the
    restarts per node."""
    out = folder / "events.jsonl"
    (folder / "soak.toml").write_text(graph_toml(streams, extras, out, extra_streams, segmenters, block_ms))
    supervisor = Supervisor(load_graph(folder / "soak.toml"), folder / "run")
    run = asyncio.ensure_future(supervisor.run())
    samples, offset = Samples(), 0
    try:
        while len(supervisor.states) < len(supervisor.graph.nodes) or set(supervisor.states.values()) != {"ready"}:
            if run.done():
                raise RuntimeError(f"the soak graph stopped before it was ready ({run.result()})")
            await asyncio.sleep(0.2)
        start = time.time()
        while (now := time.time()) - start < seconds and not run.done():
            samples.t.append(now - start)
            for name, proc in supervisor.procs.items():
                try:
                    p = psutil.Process(proc.pid)
                    rss, fds = p.memory_info().rss / 2**20, p.num_fds()
                except psutil.NoSuchProcess:
                    rss, fds = float("nan"), -1
                samples.rss.setdefault(name, []).append(rss)
                samples.fds.setdefault(name, []).append(fds)
            samples.queue.append(max(metric_values(folder / "run", "stream_queue_depth").values(), default=0.0))
            samples.dropped.append(dropped_total(folder / "run"))
            latencies, offset = turn_latencies(out, offset, now - sample_s) if out.exists() else ([], 0)
            samples.latency_p99.append(float(np.percentile(latencies, 99)) if latencies else float("nan"))
            await asyncio.sleep(max(0.0, sample_s - (time.time() - now)))
    finally:
        supervisor.stopping.set()
        await run
    return samples, dict(supervisor.restarts)


@dataclass(frozen=True)
class Verdict:
    slopes: dict[str, float]  # MiB per audio hour, per node
    fd_growth: dict[str, int]  # fds at the end minus after the warm-up, per node
    dropped: float
    max_queue: float
    latency_p99: float  # s, worst sampled interval
    flat: bool


def verdict(s: Samples, streams: int, warmup_s: float, max_slope: float) -> Verdict:
    t = np.array(s.t)
    keep = t >= warmup_s
    slopes = {name: slope_per_audio_hour(t[keep], np.array(v)[keep], streams) for name, v in s.rss.items()}
    first = int(np.argmax(keep))
    fd_growth = {name: v[-1] - v[first] for name, v in s.fds.items()}
    dropped, max_queue = s.dropped[-1] - s.dropped[first], max(s.queue[first:])
    latency = float(np.nanmax(s.latency_p99[first:])) if any(np.isfinite(s.latency_p99[first:])) else float("nan")
    flat = (all(slope < max_slope for slope in slopes.values()) and all(g <= 4 for g in fd_growth.values())
            and dropped == 0 and max_queue < MAX_QUEUE)
    return Verdict(slopes, fd_growth, dropped, max_queue, latency, flat)


def plot(s: Samples, streams: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = np.array(s.t) * streams / 3600
    fig, axes = plt.subplots(4, 1, figsize=(8, 10), sharex=True)
    for name, v in s.rss.items():
        axes[0].plot(hours, v, label=name)
    axes[0].set_ylabel("RSS (MiB)")
    axes[0].legend(fontsize=7, ncol=3)
    axes[1].plot(hours, np.sum([v for v in s.fds.values()], axis=0))
    axes[1].set_ylabel("open fds (all nodes)")
    axes[2].plot(hours, s.queue)
    axes[2].set_ylabel("max queue depth")
    axes[3].plot(hours, s.latency_p99, ".")
    axes[3].set_ylabel("turn latency p99 (s)")
    axes[3].set_xlabel(f"hours of audio through the graph ({streams} streams at real-time pace)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--audio-hours", type=float, default=24.0, help="hours of audio through the graph")
    parser.add_argument("--max-minutes", type=float, default=float("inf"), help="wall-time budget")
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument("--warmup-s", type=float, default=120.0, help="wall s left out of the slope")
    parser.add_argument("--max-slope", type=float, default=10.0, help="MiB per audio hour, per node")
    parser.add_argument("--extra", default=",".join(extras_present()), help="extra node kinds (with vad)")
    parser.add_argument("--extra-streams", type=int, help="the vad and extra nodes hear the first N streams (all)")
    parser.add_argument("--segmenters", type=int, default=1, help="segmentation nodes, streams dealt round-robin")
    parser.add_argument("--block-ms", type=float, default=100.0, help="capture block, ms (bench.meeting_streams')")
    parser.add_argument("--plot", type=Path, default=Path("soak.png"))
    args = parser.parse_args()
    extras = [k for k in args.extra.split(",") if k]
    seconds = min(args.audio_hours * 3600 / args.streams, args.max_minutes * 60)
    print(f"{args.streams} streams x {seconds / 3600:.2f} h wall = {seconds * args.streams / 3600:g} h of audio; "
          f"vad + {extras or 'no extra nodes'} on {args.extra_streams or args.streams} streams; "
          f"{args.segmenters} segmentation node(s); load {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        s, restarts = await soak(args.streams, seconds, args.sample_s, Path(tmp), extras, args.extra_streams,
                                 args.segmenters, args.block_ms)
    v = verdict(s, args.streams, args.warmup_s, args.max_slope)
    plot(s, args.streams, args.plot)
    print("| node | RSS after warm-up (MiB) | RSS at end (MiB) | slope (MiB per audio hour) | fds growth |\n"
          "|---|---|---|---|---|")
    first = int(np.argmax(np.array(s.t) >= args.warmup_s))
    for name in s.rss:
        print(f"| {name} | {s.rss[name][first]:.0f} | {s.rss[name][-1]:.0f} | {v.slopes[name]:+.2f} | "
              f"{v.fd_growth[name]:+d} |")
    print(f"reached {s.t[-1] * args.streams / 3600:.2f} h of audio in {s.t[-1] / 60:.1f} min; restarts "
          f"{ {k: n for k, n in restarts.items() if n} or 'none'}; load {os.getloadavg()[0]:.1f}")
    print(f"dropped {v.dropped:.0f}; max queue {v.max_queue:.0f} (bound {MAX_QUEUE}); worst turn latency p99 "
          f"{v.latency_p99:.2f} s; {'flat' if v.flat else 'NOT flat'}; plot {args.plot}")
    return 0 if v.flat else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
