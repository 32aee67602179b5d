"""A full disk under the sinks: the JSONL sink in a running graph, the diarization node's RTTM at end of stream.

JSONL: capture -> loudness -> JSONL (generated signal, real time) writing into a 256 KiB tmpfs that a filler
file fills mid-run, then frees again. Guards: the graph keeps running (exit 0, no restart); every event that did
not fit is counted in `stream_sink_errors_total{sink="jsonl"}` (within a few of the blocks of the full spell);
every line in the file is a whole event (no half line left by a short write); events are written again once there
is space.

RTTM: the diarization node ends two streams with its RTTM folder on a full tmpfs. Before, the first ENOSPC
escaped `close()`: the node crashed at its end of stream (the supervisor restarted it, waiting for input that
never came) and the final turn events of every stream were lost. Guards: `close()` returns the final events of
both streams, both failed files are counted (`stream_sink_errors_total{sink="rttm"}` = 2), no partial or 0-byte
RTTM is left ("no speech" it would read as), and with space again the same node writes both. Mid-stream (the RTTM
is appended as turns close): a failed append is counted and leaves whole lines, and the file catches up after.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time

import numpy as np
import pytest

from nodes.diarization.node import DiarizationNode, DiarizationNodeConfig
from nodes.diarization.stitching import Plan
from nodes.embedding.campplus import CampplusConfig
from nodes.segmentation.node import window_message
from stream import metrics
from stream.graph import Supervisor, load_graph
from stream.rttm import read_rttm
from tests.reliability.meeting_windows import windows

GRAPH = """
[graph]
name = "disk"
[metrics]
port = 0
[[nodes]]
name = "capture"
kind = "capture"
config = {{ source = "signal", block_ms = 20.0 }}
[[nodes]]
name = "loudness"
kind = "loudness"
inputs = ["capture"]
[[sinks]]
kind = "jsonl"
path = "{out}"
"""


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs (root only; skipped with the reason where mounting is refused)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip()}); the full-disk test needs root")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(path, chunk: int = 4096) -> None:
    """Write `path` until the file system is full."""
    with open(path, "wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * chunk)


async def test_full_disk_under_jsonl_sink_counts_lost_events_and_keeps_whole_lines(tmp_path, small_disk,
                                                                                    run_metrics):
    out = small_disk / "events.jsonl"
    (tmp_path / "g.toml").write_text(GRAPH.format(out=out))
    supervisor = Supervisor(load_graph(tmp_path / "g.toml"), tmp_path / "run")
    run = asyncio.ensure_future(supervisor.run())
    while not out.exists() or out.read_text().count("\n") < 25:
        await asyncio.sleep(0.05)
    fill(small_disk / "filler")
    full_from = time.time()
    await asyncio.sleep(1.0)
    (small_disk / "filler").unlink()
    full_s = time.time() - full_from
    lines_after = out.read_text().count("\n") + 25
    while out.read_text().count("\n") < lines_after:
        await asyncio.sleep(0.05)
    supervisor.stopping.set()
    assert await asyncio.wait_for(run, 30) == 0

    events = [json.loads(line) for line in out.read_text().splitlines()]  # raises on a half line
    steps = [round((b["t_audio"] - a["t_audio"]) / 0.02) for a, b in zip(events, events[1:])]
    missing = sum(step - 1 for step in steps)
    errors = run_metrics(tmp_path / "run" / "metrics").get("stream_sink_errors_total", sink="jsonl")
    print(f"disk full for {full_s:.2f} s: {missing:.0f} events missing from the file, {errors:.0f} sink errors")
    assert supervisor.restarts == {"capture": 0, "loudness": 0, "sinks": 0}
    assert missing == errors  # every event lost to the full disk is counted
    assert 0.5 * full_s / 0.02 <= errors <= full_s / 0.02 + 10
    assert sum(step > 1 for step in steps) == 1  # one spell, then every block again


async def test_full_disk_under_rttm_is_counted_and_loses_no_events(small_disk):
    node = DiarizationNode(DiarizationNodeConfig(rttm_dir=str(small_disk / "rttm")))
    await node.setup()
    g = node.chain.geometry
    activity = np.zeros((g.frames_per_window, 3), np.float32)
    activity[:, 0] = 1.0  # one speaker throughout: a turn to write
    voice = np.full((3, 2, CampplusConfig().embedding_size), np.nan, np.float32)  # [local, whole / tail, dim]
    voice[0, 0] = np.random.default_rng(0).standard_normal(voice.shape[2])
    for stream in ("a", "b"):
        for k in range(4):
            await node.process(window_message(stream, k, activity, voice, Plan(k == 0, {0: 0} if k else {}),
                                              (10**9 * (k + 1), k + 1.0), (k + 1) * g.step, g))
    (small_disk / "rttm").mkdir()
    fill(small_disk / "filler")
    errors = metrics.SINK_ERRORS.labels("rttm")
    before = errors._value.get()
    await node.close()  # raised OSError (ENOSPC) before
    assert errors._value.get() - before == 2
    assert list((small_disk / "rttm").iterdir()) == []  # nothing partial, nothing 0-byte
    (small_disk / "filler").unlink()
    await node.close()
    written = {p.name.split("-")[0]: p.read_text() for p in (small_disk / "rttm").iterdir()}
    assert sorted(written) == ["a", "b"] and all(text.startswith("SPEAKER") for text in written.values())


async def test_full_disk_mid_stream_keeps_rttm_turns_for_the_next_write(tmp_path, small_disk):
    """The RTTM is appended as turns close (issue 22): a write that fails mid-stream is counted, leaves the file as
    it was (whole lines), and its turns go out with the next write, so the file ends up as an unharmed node's."""
    nodes = {}
    for name, folder in (("full", small_disk / "rttm"), ("unharmed", tmp_path / "rttm")):
        nodes[name] = DiarizationNode(DiarizationNodeConfig(rttm_dir=str(folder)))
        await nodes[name].setup()
    errors = metrics.SINK_ERRORS.labels("rttm")
    before, spell = errors._value.get(), []
    for msg in windows("room", 900.0, nodes["full"].chain.geometry):
        k = msg.header.meta["window"]
        if k == 120:  # 1 min in: lines written, then 9 min on a full disk (appends past the file's last page fail)
            [path] = (small_disk / "rttm").iterdir()
            kept = path.read_text()
            fill(small_disk / "filler")
        elif k == 1200:
            (small_disk / "filler").unlink()
        for node in nodes.values():
            await node.process(msg)
        if 120 <= k < 1200:
            spell.append(path.read_text())
    for node in nodes.values():
        await node.close()
    assert errors._value.get() - before >= 1
    assert kept.count("\n") >= 5 and all(text.startswith(kept) and text.endswith("\n") for text in spell)
    assert read_rttm(path) and path.read_text() == next((tmp_path / "rttm").iterdir()).read_text()
