"""The meeting graph on a network stream: `--source http://...` of an AMI clip served by a local HTTP server at
real-time pace, read by the capture node through ffmpeg.

The first 16 s of dev00 (both speakers: the second voice starts at ~13.5 s) are served as a 16-bit WAV stream
(tests/capture/livehttp.py); `stream diarize --latency 0.5` runs beside the graph on the same 16 s. Guards: the
live turns are file mode's turns (same labels, boundaries within one 20 ms frame), so the stamps of a stream that
came through ffmpeg, its probing backlog included, are sample-exact audio time; the capture counted no drop
while the clip played.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile as sf

from stream.graph import NodeEntry, Supervisor, check, load_graph, with_source
from stream.paths import REPO_ROOT
from stream.rttm import read_rttm
from tests.capture.livehttp import PacedWavServer
from tests.meeting.test_meeting import WARM_UP, same_turns, turns_of

SECONDS = 16.0


def graph_on(url: str, out: Path):
    """meeting.toml on `url`, without its VAD node, events to a JSONL file, the RTTM in `out`."""
    graph = with_source(load_graph(REPO_ROOT / "configs" / "meeting.toml"), url)
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


async def test_meeting_graph_on_an_http_stream_gives_file_mode_turns(tmp_path, data, run_metrics):
    audio, rate = sf.read(data / "diarization" / "ami" / "dev00.flac", dtype="int16", frames=int(16_000 * SECONDS))
    assert rate == 16_000
    sf.write(tmp_path / "dev00.wav", audio, rate, subtype="PCM_16")
    warm = await asyncio.create_subprocess_exec(sys.executable, "-c", WARM_UP)
    assert await warm.wait() == 0
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "stream.cli", "diarize", str(tmp_path / "dev00.wav"), "--latency", "0.5", "--out",
        str(tmp_path / "cli"), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)

    server = PacedWavServer(rate, recording=np.asarray(audio, np.int16))
    await server.start()
    supervisor = Supervisor(graph_on(server.url, tmp_path), tmp_path / "run", grace_s=60.0)
    run = asyncio.ensure_future(supervisor.run(duration_s=150))
    while not server.connections:  # ffmpeg connects once the graph is ready
        assert not run.done(), "the graph stopped before the capture connected"
        await asyncio.sleep(0.1)
    await asyncio.sleep(SECONDS + 1.0)  # the clip played to its end (then the server closed the connection)
    supervisor.stopping.set()  # the nodes drain what they have: the RTTM covers the whole clip
    assert await asyncio.wait_for(run, 120) == 0
    await server.stop()
    output = (await cli.communicate())[0].decode()
    assert cli.returncode == 0, output

    file_mode = read_rttm(tmp_path / "cli" / "dev00.rttm")["dev00"]
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    live = turns_of(events, "diarization")
    assert len({t.label for t in file_mode}) >= 2 and len(file_mode) >= 4
    assert same_turns(live, file_mode), (live, file_mode)
    assert same_turns(read_rttm(next(tmp_path.glob("meeting-*.rttm")))["meeting"], file_mode)
    metrics = run_metrics(tmp_path / "run" / "metrics")
    assert metrics.get("stream_capture_reconnects_total", node="capture") == 0
