"""SIGSTOP of a node for 6 s mid-stream, under the default hang limit (hang_s = 10 s): capture -> loudness -> JSONL
on the generated signal at real-time pace (bench/faults.py stops every node kind of the default graphs for 5 s).
Before, 10 missed heartbeats of 0.5 s (5 s) made a hang: the node was killed and what was queued for it lost.

Guards: no node is restarted (a stopped process is not taken for hung before its limit); the input it missed
waited in ZeroMQ's buffer and the runner's bounded queue (max depth <= 64): every block's level event arrives
exactly once (audio times one block apart, none missing, none twice), nothing counted dropped; the stopped node
catches up within 3 s of SIGCONT.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

from stream.graph import Supervisor, load_graph

GRAPH = """
[graph]
name = "stop"
heartbeat_s = 0.5
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


def _events(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def test_stopped_node_loses_nothing_and_is_not_restarted(tmp_path, run_metrics):
    out = tmp_path / "events.jsonl"
    (tmp_path / "g.toml").write_text(GRAPH.format(out=out))
    supervisor = Supervisor(load_graph(tmp_path / "g.toml"), tmp_path / "run")
    run = asyncio.ensure_future(supervisor.run())
    while len(_events(out)) < 50:
        await asyncio.sleep(0.05)
    pid = supervisor.procs["loudness"].pid
    os.kill(pid, signal.SIGSTOP)
    await asyncio.sleep(6.0)
    os.kill(pid, signal.SIGCONT)
    resumed = time.time()
    while not any(e["t_capture"] > resumed for e in _events(out)):
        await asyncio.sleep(0.05)
    caught_up_s = time.time() - resumed
    await asyncio.sleep(0.5)
    supervisor.stopping.set()
    assert await asyncio.wait_for(run, 30) == 0

    events = _events(out)
    steps = [round((b["t_audio"] - a["t_audio"]) / 0.02) for a, b in zip(events, events[1:])]
    metrics = run_metrics(tmp_path / "run" / "metrics")
    dropped = sum(metrics.get("stream_messages_total", node=n, result="dropped") for n in ("loudness", "sinks"))
    print(f"{len(events)} events, caught up {caught_up_s:.2f} s after SIGCONT, dropped {dropped:.0f}")
    assert supervisor.restarts == {"capture": 0, "loudness": 0, "sinks": 0}
    assert set(steps) == {1}  # every block once, in order: none lost, none twice
    assert dropped == 0
    assert caught_up_s < 3.0
