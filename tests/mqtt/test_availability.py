"""Availability: `online` while the graph runs, `offline` from the broker's last will when it is killed -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from stream.broker import Broker

REPO = Path(__file__).resolve().parents[2]


async def test_last_will_says_offline_within_a_second_of_kill_9(broker: Broker, record) -> None:  # noqa: ANN001
    topic = "stream/lwt/availability"
    async with record(broker.port, topic) as rec:
        proc = subprocess.Popen(
            [sys.executable, str(REPO / "tests/mqtt/publisher.py"), broker.url, "lwt"],
            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        try:
            await rec.wait_for(lambda: rec.on(topic)[-1:] == [b"online"], timeout_s=20)
            killed = time.monotonic()
            os.kill(proc.pid, signal.SIGKILL)
            await rec.wait_for(lambda: rec.on(topic)[-1:] == [b"offline"], timeout_s=5)
            assert time.monotonic() - killed < 1.0
        finally:
            proc.kill()
            proc.wait()
    async with record(broker.port, topic) as late:  # the will is retained: a newcomer sees `offline` too
        await late.wait_for(lambda: late.on(topic) == [b"offline"])
