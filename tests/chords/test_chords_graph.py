"""The chords node in a real graph (capture -> chords -> jsonl sink, 3 processes over ZeroMQ) on a real excerpt.

Guards: every event matches the chord.changed schema, the graph announces the same chords as `stream chords`
on the same file (times within 0.1 s: the capture node's 20 ms blocks vs file mode's 1 s blocks), and the
latency histogram counts one observation per event.
"""

from __future__ import annotations

import asyncio
import json

import jsonschema

from nodes.chords.files import chords_file, segments_from_changes
from stream.graph import Supervisor, load_graph
from stream.schemas import schema

GRAPH = """
[graph]
name = "chords"
[metrics]
port = 0
[[nodes]]
name = "capture"
kind = "capture"
config = {{ source = "file", path = "{audio}", rate = 22050, block_ms = 20.0, realtime = false, stream = "song" }}
[[nodes]]
name = "chords"
kind = "chords"
inputs = ["capture"]
[[sinks]]
kind = "jsonl"
path = "{out}"
"""


async def test_graph_matches_file_mode(tmp_path, data, run_metrics):
    audio = data / "music" / "audio" / "beatles_help.flac"
    (tmp_path / "g.toml").write_text(GRAPH.format(audio=audio, out=tmp_path / "events.jsonl"))
    supervisor = Supervisor(load_graph(tmp_path / "g.toml"), tmp_path / "run")
    assert await asyncio.wait_for(supervisor.run(duration_s=60), 90) == 0

    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    for event in events:
        jsonschema.validate(event, schema("chord.changed"))
    result = await asyncio.to_thread(chords_file, audio)
    graph = segments_from_changes([(e["t_audio"], e["chord"]) for e in events], result.duration)
    assert [s.label for s in graph] == [s.label for s in result.segments]
    assert max(abs(a.start - b.start) for a, b in zip(graph, result.segments)) <= 0.1
    metrics = run_metrics(tmp_path / "run" / "metrics")
    assert metrics.get("stream_event_latency_seconds_count", node="chords", event="chord.changed") == len(events)
