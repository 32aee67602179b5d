"""kill -9 of the middle node of capture -> loudness -> sinks (generated signal, 20 ms blocks, real time).

Guards: the supervisor restarts it (restart counter 1), level events resume within 1 s of the kill, and the
outage shows in the restarted node's dropped counter (at least the blocks of the time it was dead).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

from stream.graph import Supervisor, load_graph
from stream.paths import REPO_ROOT

GRAPH = """
[graph]
name = "kill"
checkpoint_s = 0.2
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


async def test_kill_middle_node_restarts_and_resumes_within_1s(tmp_path, run_metrics):
    out = tmp_path / "events.jsonl"
    (tmp_path / "g.toml").write_text(GRAPH.format(out=out))
    supervisor = Supervisor(load_graph(tmp_path / "g.toml"), tmp_path / "run")
    run = asyncio.ensure_future(supervisor.run(duration_s=4))
    while not out.exists() or len(out.read_text().splitlines()) < 50:
        await asyncio.sleep(0.05)  # a second of events flowing
    victim = supervisor.procs["loudness"].pid
    killed_at = time.time()
    os.kill(victim, signal.SIGKILL)
    assert await asyncio.wait_for(run, 30) == 0

    events = [json.loads(line) for line in out.read_text().splitlines()]
    steps = [round((b["t_audio"] - a["t_audio"]) / 0.02) for a, b in zip(events, events[1:])]
    gap = next(i for i, step in enumerate(steps) if step > 1)  # events[gap] last before, events[gap + 1] first after
    assert all(step == 1 for step in steps[gap + 1:])  # one outage only, then every block again
    resumed_s = events[gap + 1]["t_publish"] - killed_at
    outage_blocks = steps[gap] - 1
    metrics = run_metrics(tmp_path / "run" / "metrics")
    dropped = metrics.get("stream_messages_total", node="loudness", result="dropped")
    print(f"resumed after {resumed_s * 1000:.0f} ms; {outage_blocks} blocks missed; dropped counter {dropped:.0f}")
    assert supervisor.restarts["loudness"] == 1
    assert supervisor.procs["loudness"].pid != victim
    assert resumed_s < 1.0
    assert outage_blocks > 0
    assert dropped >= outage_blocks  # plus what it processed after its last checkpoint, whose effect was lost
    assert dropped <= outage_blocks + 25  # checkpoints every 0.2 s = 10 blocks; slack for a loaded machine
    assert metrics.get("stream_messages_total", node="sinks", result="out_of_order") == 1  # loudness' seq restarted


HANG = """
[graph]
name = "hang"
heartbeat_s = 0.1
hang_s = 1.0
[metrics]
port = 0
[[nodes]]
name = "capture"
kind = "capture"
config = {{ source = "signal", block_ms = 20.0 }}
[[nodes]]
name = "stuck"
kind = "tests.runtime.faulty:HangOnce"
inputs = ["capture"]
config = {{ flag = "{flag}" }}
"""


async def test_hung_node_is_killed_after_hang_s_without_heartbeats_and_restarted(tmp_path, run_metrics, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_ROOT))  # node processes get it on PYTHONPATH; this one checks the graph
    (tmp_path / "g.toml").write_text(HANG.format(flag=tmp_path / "hung"))
    supervisor = Supervisor(load_graph(tmp_path / "g.toml"), tmp_path / "run")
    run = asyncio.ensure_future(supervisor.run(duration_s=5))
    while not (tmp_path / "hung").exists():
        await asyncio.sleep(0.02)
    hung_at = time.monotonic()
    while supervisor.restarts["stuck"] == 0:
        await asyncio.sleep(0.02)
    detected_s = time.monotonic() - hung_at
    assert await asyncio.wait_for(run, 30) == 0
    assert 0.8 <= detected_s < 2.5  # hang_s = 1 s (the last 0.1 s heartbeat up to 0.1 s before the hang)
    assert supervisor.restarts["stuck"] == 1
    ok = run_metrics(tmp_path / "run" / "metrics").get("stream_messages_total", node="stuck", result="ok")
    assert ok > 24 + 50  # the 24 before the hang, then at least a second of blocks after the restart


SLOW = HANG.replace('name = "hang"', 'name = "slow"').replace("tests.runtime.faulty:HangOnce", "tests.runtime.faulty:SlowSteps")


async def test_a_long_step_of_a_slow_node_is_not_a_hang(tmp_path, monkeypatch):
    """Heartbeats come from a thread (stream.pulse): a step of 1.6 s, over hang_s = 1 s but within 10 x the node's
    0.2 s steps, is work, not a hang (before, the node was killed)."""
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    (tmp_path / "g.toml").write_text(SLOW.format(flag=tmp_path / "long"))
    supervisor = Supervisor(load_graph(tmp_path / "g.toml"), tmp_path / "run")
    run = asyncio.ensure_future(supervisor.run(duration_s=8))
    while not (tmp_path / "long").exists() and not run.done():
        await asyncio.sleep(0.05)
    assert (tmp_path / "long").exists()
    assert await asyncio.wait_for(run, 60) == 0
    assert supervisor.restarts["stuck"] == 0
