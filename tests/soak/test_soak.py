"""A shortened soak (bench/soak.py runs hours, with the music and sound-event nodes too): 2 looped AMI meetings
at real-time pace through the soak graph (multi-stream segmentation, diarization, VAD) for 20 s after every node
is ready, sampled every second.

Guards: no node restarted; nothing dropped; queues under the runner's bound (64); no node's open file descriptors grow after the
first 5 s; no node's RSS grows by more than 64 MiB over the last 15 s (a leak of 4 MiB/s of audio, caught here;
bench/soak.py bounds the slope per audio hour over hours); speaker turns come out (their latency is a timing:
bench/soak.py reports it).
"""

from __future__ import annotations

import numpy as np

from bench.soak import soak, verdict


async def test_short_soak_is_flat(tmp_path, data):
    samples, restarts = await soak(streams=2, seconds=20.0, sample_s=1.0, folder=tmp_path, extras=[])
    v = verdict(samples, streams=2, warmup_s=5.0, max_slope=float("inf"))
    t = np.array(samples.t)
    first = int(np.argmax(t >= 5.0))
    growth = {name: rss[-1] - rss[first] for name, rss in samples.rss.items()}
    print(f"RSS growth (MiB) {growth}; fds {v.fd_growth}; dropped {v.dropped}; max queue {v.max_queue}; "
          f"turn p99 {v.latency_p99:.2f} s")
    assert v.dropped == 0 and v.max_queue < 64
    assert not any(restarts.values()), restarts
    assert all(g <= 0 for g in v.fd_growth.values()), v.fd_growth
    assert all(g < 64 for g in growth.values()), growth
    assert np.isfinite(v.latency_p99)
