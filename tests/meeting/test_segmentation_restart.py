"""Bug 1 of issue #21: a restarted segmentation node must not shift later turns; the lost audio is a gap.

configs/meeting.toml (without its VAD node) on the 30 s AMI clip dev00 at real-time pace, with `stream diarize
--latency 0.5` on the same file beside it (the uninterrupted output). The segmentation node (the heavy one, with
models to load again) is killed -9 at ~5 s of audio, in the middle of MEE009's 12 s turn; the capture goes on
and what it sends while the node is down is lost.

Guards: the supervisor restarts the node once; the live RTTM has no speech between the kill and the restarted
node's "ready" although file mode has speech there (the lost span is a gap); after it, live speech lines up with
file mode's at a lag of at most one step (0.5 s) and agrees on >= 90 % of the frames, and half of file mode's
change points have a live twin within a step (labels aside: the clustering may take another path after the
gap). Before the fix, windows were stamped by counting samples, so every turn after the restart came as early
as the lost span was long.
Before the kill, `stream_realtime_factor` is above 0 for the diarization node too (it read 0.0).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import numpy as np

from stream.graph import NodeEntry, Supervisor, check, load_graph, with_source
from stream.paths import REPO_ROOT
from stream.rttm import Turn, read_rttm

WARM_UP = "import asyncio; from nodes.segmentation.node import SegmentationNode; asyncio.run(SegmentationNode().setup())"

STEP = 0.5  # s, the windows' step: the tolerance on turn times
KILL_AT = 5.0  # s of audio


def graph_on(source: Path, out: Path):
    graph = with_source(load_graph(REPO_ROOT / "configs" / "meeting.toml"), str(source))
    nodes = []
    for node in graph.nodes:
        if node.name == "vad":
            continue
        if node.name == "diarization":
            node = replace(node, config={**node.config, "rttm_dir": str(out)})
        if node.name == "sinks":
            node = NodeEntry("sinks", node.kind, {"sinks": [{"kind": "jsonl", "path": str(out / "events.jsonl")}]},
                             ("diarization",))
        nodes.append(node)
    graph = replace(graph, nodes=tuple(nodes), metrics_port=0)
    check(graph)
    return graph


def read_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def speech(turns: list[Turn], start: float, end: float) -> float:
    """Seconds of [start, end) with at least one turn."""
    step = 0.01
    return step * sum(any(t.start <= x < t.end for t in turns) for x in [start + i * step
                                                                          for i in range(int((end - start) / step))])


def best_lag(ours: list[Turn], theirs: list[Turn], start: float, end: float) -> tuple[float, float]:
    """(lag in s, agreement): the shift of `ours` (-6 to 6 s, 20 ms steps) under which its speech/non-speech
    frames agree most with `theirs` over [start, end), and that agreement; ties go to the smallest lag."""
    frames = np.arange(start, end, 0.02)

    def active(turns: list[Turn], times: np.ndarray) -> np.ndarray:
        return np.any([(t.start <= times) & (times < t.end) for t in turns], axis=0)

    target = active(theirs, frames)
    lags = sorted((round(0.02 * i, 2) for i in range(-300, 301)), key=abs)
    scores = {lag: float(np.mean(active(ours, frames + lag) == target)) for lag in lags}
    best = max(lags, key=scores.__getitem__)
    return best, scores[best]


def realtime_factors(port: int) -> dict[str, float]:
    """node -> stream_realtime_factor, scraped from the graph's metrics endpoint."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {m[1]: float(m[2]) for m in re.finditer(r'^stream_realtime_factor\{node="([^"]+)"\} (\S+)$', text, re.M)}


async def kill_and_wait_restart(supervisor: Supervisor, events: Path) -> tuple[float, float]:
    """Kill -9 the segmentation node at KILL_AT s of audio; (kill, ready again) as Unix times, and the stream's
    start (Unix s of audio time 0)."""
    while not read_events(events):
        await asyncio.sleep(0.1)
    first = read_events(events)[0]
    t0 = first["t_capture"] - first["t_audio"]
    await asyncio.sleep(max(0.0, t0 + KILL_AT - time.time()))
    rtf = realtime_factors(supervisor.metrics_port)
    print("stream_realtime_factor before the kill:", rtf)
    assert rtf["diarization"] > 0 and rtf["segmentation"] > 0  # issue #21: the diarization node's read 0.0
    old = supervisor.procs["segmentation"]
    os.kill(old.pid, signal.SIGKILL)
    killed = time.time()
    while supervisor.procs["segmentation"] is old or supervisor.states["segmentation"] != "ready":
        await asyncio.sleep(0.02)
    return killed - t0, time.time() - t0


async def test_restarted_segmentation_keeps_times_and_leaves_a_gap(tmp_path, data):
    wav = data / "diarization" / "ami" / "dev00.flac"
    warm = await asyncio.create_subprocess_exec(sys.executable, "-c", WARM_UP)
    assert await warm.wait() == 0
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "stream.cli", "diarize", str(wav), "--latency", "0.5", "--out", str(tmp_path / "cli"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    supervisor = Supervisor(graph_on(wav, tmp_path), tmp_path / "run")
    run = asyncio.ensure_future(supervisor.run(duration_s=150))
    killed, ready = await asyncio.wait_for(kill_and_wait_restart(supervisor, tmp_path / "events.jsonl"), 120)
    assert await asyncio.wait_for(run, 150) == 0
    output = (await cli.communicate())[0].decode()
    assert cli.returncode == 0, output
    live = read_rttm(tmp_path / "meeting.rttm")["meeting"]
    file_mode = read_rttm(tmp_path / "cli" / "dev00.rttm")["dev00"]
    print(f"killed at {killed:.2f} s of audio, ready again at {ready:.2f} s")
    assert supervisor.restarts["segmentation"] == 1
    assert 1.0 < ready - killed < 15.0

    # the lost span is a gap (file mode has speech all through it)
    assert speech(file_mode, killed + 0.1, ready - 0.1) > 0.6 * (ready - killed - 0.2)
    assert speech(live, killed + 0.1, ready - 0.1) < 0.1

    # after the restart the turns keep their times (labels aside: the clustering may take another path after the
    # gap): speech lines up with file mode's at a lag of at most a step, and most change points have a live twin
    after = ready + STEP
    lag, agreement = best_lag(live, file_mode, after, 30.0)
    theirs = sorted({round(x, 3) for t in file_mode for x in (t.start, t.end) if after < x < 29.9})
    near = sum(any(abs(y - x) <= STEP for t in live for y in (t.start, t.end)) for x in theirs)
    print(f"after {after:.1f} s: speech lag {lag:+.2f} s (agreement {agreement:.2f}); {near} of {len(theirs)} change "
          f"points with a live twin within {STEP} s")
    assert abs(lag) <= STEP and agreement >= 0.9
    assert len(theirs) >= 4 and near >= 0.5 * len(theirs)
