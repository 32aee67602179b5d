"""The PulseAudio source removed and re-added under a live capture node (capture -> loudness -> JSONL, the capture
node on the ALSA "pulse" device reading a null sink's monitor, as tests/capture/test_pulse.py sets up).

Before, PortAudio just stopped calling back when the source went away: the node kept running, heartbeats and all,
and never captured again. Guards: no node restarts; the stall is counted once
(`stream_capture_problems_total{problem="stalled"}`); level events resume within 15 s of the re-add and carry a
tone played into the new source (real audio, not a stuck stream); no event is stamped inside the outage (nothing
invented); times stay true: capture time minus audio time is the same before and after the gap (within 50 ms) and
audio time jumps by the outage.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time

import numpy as np
import soundfile as sf

from stream.graph import Supervisor, load_graph
from tests.capture.test_pulse import pulse  # noqa: F401 - the fixture: a private PulseAudio with a null sink

GRAPH = """
[graph]
name = "pulse-gone"
[metrics]
port = 0
[[nodes]]
name = "capture"
kind = "capture"
config = {{ source = "device", device = "pulse", block_ms = 20.0 }}
[[nodes]]
name = "loudness"
kind = "loudness"
inputs = ["capture"]
config = {{ every = 5 }}
[[sinks]]
kind = "jsonl"
path = "{out}"
"""


def _events(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def _until(check, seconds: float) -> float:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < seconds
        await asyncio.sleep(0.1)
    return time.monotonic() - start


async def test_pulse_source_removed_and_readded_under_live_capture(pulse, tmp_path, monkeypatch, run_metrics):  # noqa: F811
    for key, value in pulse.items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "events.jsonl"
    (tmp_path / "g.toml").write_text(GRAPH.format(out=out))
    supervisor = Supervisor(load_graph(tmp_path / "g.toml"), tmp_path / "run")
    run = asyncio.ensure_future(supervisor.run())
    await _until(lambda: len(_events(out)) >= 10, 60)
    pactl = lambda *args: subprocess.run(["pactl", *args], env=pulse, check=True, capture_output=True,  # noqa: E731
                                         text=True, timeout=10).stdout
    module = next(line.split()[0] for line in pactl("list", "short", "modules").splitlines() if "null-sink" in line)
    pactl("unload-module", module)
    removed = time.time()
    await asyncio.sleep(5.0)
    before = len(_events(out))
    pactl("load-module", "module-null-sink", "sink_name=test")
    readded = time.time()
    resumed_s = await _until(lambda: any(e["t_capture"] > readded for e in _events(out)), 15)
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000).astype(np.float32)
    sf.write(tmp_path / "tone.wav", tone, 16000)
    subprocess.run(["paplay", "--device=test", str(tmp_path / "tone.wav")], env=pulse, check=True, timeout=10)
    await asyncio.sleep(1.0)
    supervisor.stopping.set()
    assert await asyncio.wait_for(run, 30) == 0

    events = _events(out)
    after = [e for e in events if e["t_capture"] > readded]
    stalled = run_metrics(tmp_path / "run" / "metrics").get("stream_capture_problems_total", node="capture",
                                                             problem="stalled")
    offsets = [e["t_capture"] - e["t_audio"] for e in events]
    jump = max(b["t_audio"] - a["t_audio"] for a, b in zip(events, events[1:]))
    print(f"resumed {resumed_s:.1f} s after the re-add; {before} events before, {len(after)} after; "
          f"audio time jumped {jump:.2f} s; offsets spread {np.ptp(offsets) * 1000:.1f} ms; stalled {stalled:.0f}")
    assert supervisor.restarts == {"capture": 0, "loudness": 0, "sinks": 0}
    assert stalled == 1
    assert not [e for e in events if removed + 1.0 < e["t_capture"] < readded]  # nothing stamped in the outage
    assert max(e["peak_dbfs"] for e in after) > -12.0  # the tone came through the re-added source
    assert np.ptp(offsets) < 0.05
    assert jump > 5.0 - 1.0
