"""Reading a run's metrics while node processes start and die: prometheus_client creates a process's file empty
and sizes it a moment later, and the supervisor removes a dead process's gauges; a read that met either raised
(struct.error, FileNotFoundError), which once failed a scrape and silently killed bench/faults.py's sampler (the
hung-diarization fault test then saw no recovery: CI, session 13)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from prometheus_client.mmap_dict import MmapedDict

from stream.metrics import run_registry


def test_a_run_read_while_processes_start_and_die_never_fails(tmp_path: Path) -> None:
    counter = MmapedDict(str(tmp_path / "counter_1.db"))
    counter.write_value('["stream_messages", "stream_messages_total", {"node": "vad", "result": "ok"}, "counter"]', 7.0, 0.0)
    counter.close()
    done = threading.Event()

    def churn() -> None:  # a node process starting (its file created empty, then sized) and dying, over and over
        pid = 2
        while not done.is_set():
            path = tmp_path / f"gauge_livemax_{pid}.db"
            with open(path, "a+b") as f:
                f.truncate(1 << 16)
            os.remove(path)
            pid += 1

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        values = [run_registry(tmp_path).get_sample_value("stream_messages_total", {"node": "vad", "result": "ok"})
                  for _ in range(300)]
    finally:
        done.set()
        thread.join()
    assert values == [7.0] * 300
