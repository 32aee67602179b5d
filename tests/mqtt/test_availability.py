"""Availability: `online` while a real graph runs, `offline` from the broker's last will when it is killed -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema

from stream.broker import Broker
from stream.schemas import schema

REPO = Path(__file__).resolve().parents[2]

GRAPH = """
[graph]
name = "lwt"
[metrics]
port = 0
[[nodes]]
name = "capture"
kind = "capture"
config = {{ source = "signal", block_ms = 20.0, stream = "lwt" }}
[[nodes]]
name = "loudness"
kind = "loudness"
inputs = ["capture"]
config = {{ every = 5 }}
[[sinks]]
kind = "mqtt"
url = "{url}"
stream = "lwt"
"""


async def test_graph_killed_9_goes_offline_at_once(broker: Broker, record, tmp_path: Path) -> None:  # noqa: ANN001
    (tmp_path / "g.toml").write_text(GRAPH.format(url=broker.url))
    availability = "stream/lwt/availability"
    async with record(broker.port, "stream/lwt/#") as rec:
        graph = subprocess.Popen([sys.executable, "-m", "stream.cli", "run", str(tmp_path / "g.toml")], cwd=REPO,
                                 start_new_session=True)  # its own process group: supervisor + node processes
        try:
            await rec.wait_for(lambda: len(rec.on("stream/lwt/level")) >= 3, timeout_s=60)
            assert rec.on(availability) == [b"online"]
            killed = time.monotonic()
            os.killpg(graph.pid, signal.SIGKILL)
            await rec.wait_for(lambda: rec.on(availability)[-1:] == [b"offline"], timeout_s=5)
            assert time.monotonic() - killed < 2.0  # socket closed by the kernel; keepalive expiry would take 15 s
        finally:
            os.killpg(graph.pid, signal.SIGKILL)
            graph.wait()
    for payload in rec.on("stream/lwt/level"):
        jsonschema.validate(json.loads(payload), schema("level"))
    async with record(broker.port, availability) as late:  # the will is retained: a newcomer sees `offline` too
        await late.wait_for(lambda: late.on(availability) == [b"offline"])
