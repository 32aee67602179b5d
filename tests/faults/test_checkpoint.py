"""Corrupted checkpoints: capture -> loudness -> JSONL (generated signal, real time) started on a run folder whose
checkpoints are spoiled, as a torn write or a filled disk leaves them.

Guards: loudness' checkpoint of random bytes is set aside at once (restarts 0, `stream_checkpoint_corrupt_total` 1)
and capture's well-formed checkpoint whose state crashes the node is set aside after 3 quick crashes (restarts 3,
not a crash loop); level events flow afterwards with every block, and both files stay as `<node>.corrupt`.
"""

from __future__ import annotations

import asyncio
import json

import msgpack
import numpy as np

from stream.graph import STATE_SUSPECT_AFTER, Supervisor, load_graph

GRAPH = """
[graph]
name = "corrupt"
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


async def test_corrupted_checkpoints_start_fresh_without_a_crash_loop(tmp_path, run_metrics):
    out, state = tmp_path / "events.jsonl", tmp_path / "run" / "state"
    state.mkdir(parents=True)
    (state / "loudness.msgpack").write_bytes(np.random.default_rng(0).bytes(300))
    (state / "capture.msgpack").write_bytes(msgpack.packb({"node": {"start_ns": "garbage"}, "seq_in": {},
                                                                     "seq_out": {}, "sent": {}, "epoch": 1}))
    (tmp_path / "g.toml").write_text(GRAPH.format(out=out))
    supervisor = Supervisor(load_graph(tmp_path / "g.toml"), tmp_path / "run")
    run = asyncio.ensure_future(supervisor.run())
    while not out.exists() or out.read_text().count("\n") < 50:
        assert not run.done(), "the graph stopped"
        await asyncio.sleep(0.05)
    supervisor.stopping.set()
    assert await asyncio.wait_for(run, 30) == 0

    events = [json.loads(line) for line in out.read_text().splitlines()]
    steps = {round((b["t_audio"] - a["t_audio"]) / 0.02) for a, b in zip(events, events[1:])}
    assert steps == {1}
    assert supervisor.restarts == {"capture": STATE_SUSPECT_AFTER, "loudness": 0, "sinks": 0}
    assert run_metrics(tmp_path / "run" / "metrics").get("stream_checkpoint_corrupt_total", node="loudness") == 1
    assert (state / "loudness.corrupt").is_file() and (state / "capture.corrupt").is_file()
