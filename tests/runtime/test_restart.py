"""kill -9 of the middle node of capture -> loudness -> sinks (generated signal, 20 ms blocks, real time), beside an
unharmed twin `loudness_ref`; an event sums 3 blocks, so their state (the blocks of the event under way, the
stream's first stamp) spans messages.

Guards: the supervisor restarts it (restart counter 1), level events resume within 1 s of the kill, and nothing is
lost or told twice: the restarted node gets the blocks of its outage and those after its checkpoint replayed by
capture, re-makes the events after its checkpoint with their first seq (the sinks drop and count them as
duplicates), and its events equal its twin's, every one once. Restarted without its checkpoint (deleted), it is a
new epoch: its seq starting over is a restart to the sinks, not duplicates.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

from stream.graph import Supervisor, load_graph
from stream.paths import REPO_ROOT

GRAPH = """
[graph]
name = "kill"
checkpoint_s = {checkpoint_s}
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
config = {{ every = 3 }}
[[nodes]]
name = "loudness_ref"
kind = "loudness"
inputs = ["capture"]
config = {{ every = 3 }}
[[sinks]]
kind = "jsonl"
path = "{out}"
"""


def levels(out: Path, node: str) -> list[tuple[float, float, float]]:
    events = [json.loads(line) for line in out.read_text().splitlines()]
    return [(round(e["t_audio"], 3), e["rms_dbfs"], e["peak_dbfs"]) for e in events if e["node"] == node]


async def _kill_after_checkpoint(tmp_path: Path, keep_state: bool, run_metrics):
    """Run the graph 4 s; 0.5 s after a checkpoint of loudness (so it has events to re-make), kill it; without
    `keep_state` its checkpoint is deleted first (while it is stopped, so it writes no other)."""
    out = tmp_path / "events.jsonl"
    (tmp_path / "g.toml").write_text(GRAPH.format(out=out, checkpoint_s=1.0))
    supervisor = Supervisor(load_graph(tmp_path / "g.toml"), tmp_path / "run")
    run = asyncio.ensure_future(supervisor.run(duration_s=4))
    while not out.exists() or len(out.read_text().splitlines()) < 10:
        await asyncio.sleep(0.05)  # events flowing
    state = tmp_path / "run" / "state" / "loudness.msgpack"
    first = state.stat().st_mtime_ns if state.exists() else 0
    while not state.exists() or state.stat().st_mtime_ns == first:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.5)
    victim = supervisor.procs["loudness"].pid
    if not keep_state:
        os.kill(victim, signal.SIGSTOP)
        state.unlink()
    killed_at = time.time()
    os.kill(victim, signal.SIGKILL)
    assert await asyncio.wait_for(run, 30) == 0
    events = [json.loads(line) for line in out.read_text().splitlines()]
    resumed_s = min(e["t_publish"] for e in events if e["node"] == "loudness" and e["t_publish"] > killed_at) \
        - killed_at
    assert supervisor.restarts == {"capture": 0, "loudness": 1, "loudness_ref": 0, "sinks": 0}
    assert supervisor.procs["loudness"].pid != victim
    assert resumed_s < 1.0
    return out, run_metrics(tmp_path / "run" / "metrics"), killed_at


async def test_killed_node_gets_what_it_missed_and_tells_every_event_once(tmp_path, run_metrics):
    out, metrics, _ = await _kill_after_checkpoint(tmp_path, True, run_metrics)
    ours, twin = levels(out, "loudness"), levels(out, "loudness_ref")
    duplicates = metrics.get("stream_messages_total", node="sinks", result="duplicate")
    print(f"{len(ours)} events, twin {len(twin)}; sinks dropped {duplicates:.0f} re-made as duplicates")
    assert len(twin) > 50
    assert sorted(set(twin) - set(ours)) == [] and sorted(set(ours) - set(twin)) == []
    assert ours == twin  # the same events, in order, none missing, none twice
    assert duplicates >= 4  # 0.5 s of events after the checkpoint (16.7 per second) were re-made, and dropped
    for node in ("loudness", "sinks"):
        assert metrics.get("stream_messages_total", node=node, result="dropped") == 0
        assert metrics.get("stream_messages_total", node=node, result="out_of_order") == 0


async def test_a_node_restarted_without_its_checkpoint_is_a_new_epoch_not_duplicates(tmp_path, run_metrics):
    out, metrics, killed_at = await _kill_after_checkpoint(tmp_path, False, run_metrics)
    events = [json.loads(line) for line in out.read_text().splitlines()]
    after = {node: sum(e["node"] == node and e["t_publish"] > killed_at for e in events)
             for node in ("loudness", "loudness_ref")}
    assert metrics.get("stream_messages_total", node="sinks", result="duplicate") == 0
    assert metrics.get("stream_messages_total", node="sinks", result="out_of_order") == 1  # loudness' seq restarted
    assert after["loudness_ref"] >= 8
    assert abs(after["loudness"] - after["loudness_ref"]) <= 10  # taken, none dropped as a duplicate (its outage
    #   is lost: no checkpoint, no replay; grouped afresh)


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
