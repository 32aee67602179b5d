"""`stream run` + `stream listen` as a user runs them: events reach a listener; Ctrl-C stops the graph cleanly.

Guards: `stream listen --count 5` prints 5 schema-valid events (one hop over tcp://, the others ipc://);
SIGINT makes `stream run` exit 0 within 5 s with no node process left behind.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

import jsonschema
import psutil

from stream.paths import REPO_ROOT
from stream.schemas import schema

GRAPH = """
[metrics]
port = 0
[[nodes]]
name = "capture"
kind = "capture"
[[nodes]]
name = "loudness"
kind = "loudness"
inputs = ["capture"]
endpoint = "tcp://127.0.0.1:{port}"
[[sinks]]
kind = "zmq_pub"
endpoint = "{endpoint}"
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_listen_and_ctrl_c(tmp_path):
    endpoint = f"ipc://{tmp_path / 'events.sock'}"
    (tmp_path / "g.toml").write_text(GRAPH.format(endpoint=endpoint, port=_free_port()))  # loudness -> sinks: tcp
    stream = [sys.executable, "-m", "stream.cli"]
    run = subprocess.Popen([*stream, "run", str(tmp_path / "g.toml")], cwd=REPO_ROOT)
    try:
        listen = subprocess.run([*stream, "listen", "--endpoint", endpoint, "--json", "--count", "5"],
                                cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
        events = [json.loads(line) for line in listen.stdout.splitlines()]
        assert listen.returncode == 0 and len(events) == 5
        for event in events:
            jsonschema.validate(event, schema("level"))
        nodes = psutil.Process(run.pid).children()
        assert len(nodes) == 4  # capture, loudness, sinks + the standby process
        started = time.monotonic()
        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=10) == 0
        assert time.monotonic() - started < 5.0
        assert not [p for p in nodes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    finally:
        if run.poll() is None:
            run.kill()


def test_missing_input_file_stops_the_graph_with_the_reason(tmp_path):
    (tmp_path / "g.toml").write_text(GRAPH.format(endpoint=f"ipc://{tmp_path / 'e.sock'}", port=_free_port()).replace(
        'kind = "capture"', f'kind = "capture"\nconfig = {{ source = "file", path = "{tmp_path / "nope.wav"}" }}'))
    run = subprocess.run([sys.executable, "-m", "stream.cli", "run", str(tmp_path / "g.toml")], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "nope.wav" in run.stderr
    assert "restart" not in run.stderr  # stopped at once, no restart loop


def test_the_command_line_starts_without_jax():
    """Neither one command's parser nor the whole command line (`stream --help`) imports JAX, optax or SciPy's
    signal package: the trainers' parsers once imported them to show their defaults (~2 s of a 22 s AMI run, 4.7 s
    for `stream --help`); their configs now live in modules that import neither (``*/train_config.py``)."""
    for command in ("'diarize'", ""):
        probe = (f"import sys; from stream.cli import build_parser; build_parser({command});"
                 "print(sorted(m for m in ('jax', 'optax', 'scipy.signal') if m in sys.modules))")
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
        assert out.stdout.strip() == "[]", command
    full = subprocess.run([sys.executable, "-m", "stream.cli", "nosuch"], capture_output=True, text=True, cwd=REPO_ROOT)
    assert full.returncode == 2 and "train-segmentation" in full.stderr  # unknown: the whole list of commands
