"""Bug 1 of issue #21: a restarted segmentation node must not shift later turns; the lost audio is a gap.

configs/meeting.toml (without its VAD node) on the 30 s AMI clip dev00 at real-time pace, with `stream diarize
--latency 0.5` on the same file beside it (the uninterrupted output). The segmentation node (the heavy one, with
models to load again) is killed -9 at ~5 s of audio, in the middle of MEE009's 12 s turn; the capture goes on
and what it sends while the node is down is lost.

Guards: the supervisor restarts the node once; the live RTTM has no speech between the kill and the restarted
node's "ready" although file mode has speech there (the lost span is a gap); every turn start and end of file
mode from 8 s (one window) after the restart: the live ones line up with them at a shift of at most one step
(0.5 s; labels aside, the clustering may take another path after the gap). Before the fix, windows
were stamped by counting samples, so every turn after the restart came as early as the lost span was long.
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

from stream.graph import NodeEntry, Supervisor, check, load_graph, with_source
from stream.paths import REPO_ROOT
from stream.rttm import Turn, read_rttm

WARM_UP = "import asyncio; from nodes.segmentation.node import SegmentationNode; asyncio.run(SegmentationNode().setup())"

STEP = 0.5  # s, the windows' step: the tolerance on turn times
WINDOW = 8.0  # s, the windows' duration: windows after the restart hold zeros for this long
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


def best_shift(theirs: list[float], ours: list[float], tolerance: float = 0.1) -> tuple[float, int]:
    """(shift in s, matches): the shift of `ours` (-8 to 8 s, 20 ms steps) that lines up most of `theirs` within
    `tolerance`; ties go to the smallest shift."""
    def matches(shift: float) -> int:
        return sum(any(abs(y - shift - x) <= tolerance for y in ours) for x in theirs)

    shifts = sorted((round(0.02 * i, 2) for i in range(-400, 401)), key=abs)
    best = max(shifts, key=matches)
    return best, matches(best)


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
    assert 1.0 < ready - killed < 20.0 and ready + WINDOW < 25.0

    # the lost span is a gap (file mode has speech all through it)
    assert speech(file_mode, killed + 0.1, ready - 0.1) > 0.6 * (ready - killed - 0.2)
    assert speech(live, killed + 0.1, ready - 0.1) < 0.1

    # after the restart, the turns keep their times: the change points (any turn's start or end) of file mode from
    # one window after the restart line up with the live ones at a shift of at most one step
    settled = ready + WINDOW
    theirs = sorted({x for t in file_mode for x in (t.start, t.end) if settled < x < 29.9})
    ours = sorted({x for t in live for x in (t.start, t.end)})
    shift, _ = best_shift(theirs, ours)
    near = sum(any(abs(y - x) <= STEP for y in ours) for x in theirs)
    print(f"change points after {settled:.1f} s: {len(theirs)}, best shift {shift:+.2f} s, {near} with a live twin "
          f"within {STEP} s")
    assert len(theirs) >= 4 and abs(shift) <= STEP and near >= len(theirs) / 2
