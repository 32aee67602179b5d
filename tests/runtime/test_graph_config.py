"""Graph TOML checks: errors name what is wrong (node, key, valid choices) before any process starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stream.errors import ConfigError
from stream.graph import Supervisor, load_graph, with_source
from stream.paths import REPO_ROOT

BASE = """
[[nodes]]
name = "capture"
kind = "capture"
[[nodes]]
name = "loudness"
kind = "loudness"
inputs = ["capture"]
"""


def _graph(tmp_path, text):
    path = tmp_path / "g.toml"
    path.write_text(text)
    return load_graph(path)


def test_demo_graph_loads_with_sinks_node_wired_to_every_node(tmp_path):
    graph = load_graph(REPO_ROOT / "configs" / "demo.toml")
    assert [n.name for n in graph.nodes] == ["capture", "segmentation", "diarization", "sed", "beats", "chords",
                                             "sinks"]
    assert graph.node("sinks").inputs == ("capture", "segmentation", "diarization", "sed", "beats", "chords")
    assert graph.subscribers("capture") == ["segmentation", "sed", "beats", "chords", "sinks"]
    spec = Supervisor(graph, tmp_path).spec(graph.node("diarization"))
    assert spec.inputs == {"segmentation": f"ipc://{tmp_path / 'segmentation.sock'}"}
    assert spec.subscribers == ["sinks"]
    assert (spec.replay_s, spec.replay_bytes) == (10.0, 32 * 2**20)  # the defaults


def test_replay_bounds_reach_every_node_and_are_checked(tmp_path):
    graph = _graph(tmp_path, "[graph]\nreplay_s = 0\nreplay_mb = 1.5\n" + BASE)
    spec = Supervisor(graph, tmp_path).spec(graph.node("capture"))
    assert (spec.replay_s, spec.replay_bytes) == (0.0, 3 * 2**19)
    for bad in ("replay_s = -1", "replay_mb = 5000", 'replay_s = "10"'):
        with pytest.raises(ConfigError, match="replay_"):
            _graph(tmp_path, f"[graph]\n{bad}\n" + BASE)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (BASE + '[nodes.config]\nevry = 2\n', ["loudness", "evry", "valid keys", "every"]),
        (BASE + '[nodes.config]\nevery = "2"\n', ["loudness", "every", "int"]),
        (BASE.replace('inputs = ["capture"]', 'inputs = ["mic"]'), ["loudness", "mic"]),
        (BASE.replace('kind = "loudness"', 'kind = "loudnes"'), ["loudnes", "not found"]),
        (BASE + '[[nodes]]\nname = "loudness"\nkind = "loudness"\n', ["unique"]),
        (BASE + '[metrics]\nprt = 1\n', ["prt", "port"]),
        (BASE + '[[nodes]]\nname = "a"\nkind = "loudness"\ninputs = ["b"]\n'
                '[[nodes]]\nname = "b"\nkind = "loudness"\ninputs = ["a"]\n', ["cycle"]),
        (BASE.replace('kind = "capture"', 'kind = "capture"\ninputs = ["loudness"]'), ["source"]),
        (BASE.replace('inputs = ["capture"]', ''), ["loudness", "needs inputs"]),
        (BASE + '[[sinks]]\nkind = "jsonl"\npth = "x"\n', ["sinks[0]", "pth", "path"]),
    ],
)
def test_bad_graphs_are_config_errors_naming_the_problem(tmp_path, text, words):
    with pytest.raises(ConfigError) as info:
        _graph(tmp_path, text)
    assert all(w in str(info.value) for w in words), str(info.value)


def test_source_override_picks_file_or_device(tmp_path):
    graph = _graph(tmp_path, BASE)
    wav = tmp_path / "a.wav"
    wav.write_bytes(b"")
    assert with_source(graph, str(wav)).node("capture").config == {"source": "file", "path": str(wav)}
    assert with_source(graph, "3").node("capture").config == {"source": "device", "device": 3}


def test_metrics_port_in_use_is_a_config_error(tmp_path):
    import asyncio
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        graph = _graph(tmp_path, BASE + f"[metrics]\nport = {busy.getsockname()[1]}\n")
        with pytest.raises(ConfigError, match=r"cannot serve metrics .* in use.*\[metrics\] port"):
            asyncio.run(Supervisor(graph, tmp_path / "run").run(duration_s=1))


def test_metrics_port_in_use_leaves_no_run_folder(tmp_path):
    """Issue #21, bug 4: the temporary run folder was left behind when the metrics port was taken."""
    import asyncio
    import socket
    import tempfile
    from dataclasses import replace

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        graph = replace(_graph(tmp_path, BASE + f"[metrics]\nport = {busy.getsockname()[1]}\n"),
                        name=f"busy{os.getpid()}")
        with pytest.raises(ConfigError):
            asyncio.run(Supervisor(graph).run(duration_s=1))
    assert not list(Path(tempfile.gettempdir()).glob(f"stream-{graph.name}-*"))


def test_missing_source_file_is_named_at_once():
    """Issue #21, bug 2: `stream run ... --source missing.wav --duration 3` exited 1 and printed nothing."""
    done = subprocess.run([sys.executable, "-m", "stream.cli", "run", "configs/demo.toml", "--source", "missing.wav",
                           "--duration", "3"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "missing.wav: no such file" in done.stderr and "stream devices" in done.stderr


def test_duration_counts_from_ready(tmp_path):
    """Issue #21: `--duration` counted the start-up. A node that takes 3 s to set up holds the start; a 1.5 s run
    still delivers 1.5 s of level events (capture starts once every subscriber has joined)."""
    import asyncio
    import json

    out = tmp_path / "events.jsonl"
    graph = _graph(tmp_path, BASE + f"""
[[nodes]]
name = "slow"
kind = "tests.runtime.faulty:SlowStart"
inputs = ["capture"]
[metrics]
port = 0
[[sinks]]
kind = "jsonl"
path = "{out}"
""")
    assert asyncio.run(Supervisor(graph, tmp_path / "run").run(duration_s=1.5)) == 0
    audio = [json.loads(line)["t_audio"] for line in out.read_text().splitlines()] if out.exists() else []
    assert audio and audio[-1] - audio[0] >= 1.2, audio
