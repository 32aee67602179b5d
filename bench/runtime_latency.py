"""Runtime latency and capacity (bench/RESULTS.md, "## Runtime").

1. Transport latency per hop: probe chain tick -> relay -> relay -> record (4 processes, 20 ms blocks, real
   time; bench/runtime_probe.py), p50/p95/p99 of send-to-receive time of each hop.
2. Concurrent real-time streams: K copies of the demo graph (capture test signal 20 ms blocks -> loudness every
   block -> sinks JSONL; 3 processes + 1 standby each) run at once; once all publish, a steady window of
   `--stream-seconds` is measured. K is sustained when no message was dropped, no block's event is missing,
   >= 98 % of the window's expected events were published in it, and p99 of (event latency - 20 ms block) is
   under 100 ms (at most 5 blocks behind; the 2 cores are shared, so scheduling spikes are part of the measure).

    .venv/bin/python -m bench.runtime_latency [--seconds 20] [--streams 1,2,4,8,12,16,24] [--stream-seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

from stream.graph import Supervisor, load_graph
from stream.metrics import run_registry

PROBE = """
[graph]
name = "probe"
[metrics]
port = 0
[[nodes]]
name = "tick"
kind = "bench.runtime_probe:Tick"
[[nodes]]
name = "relay1"
kind = "bench.runtime_probe:Relay"
inputs = ["tick"]
[[nodes]]
name = "relay2"
kind = "bench.runtime_probe:Relay"
inputs = ["relay1"]
[[nodes]]
name = "record"
kind = "bench.runtime_probe:Record"
inputs = ["relay2"]
config = {{ path = "{out}" }}
"""

DEMO = """
[graph]
name = "demo{k}"
[metrics]
port = 0
[[nodes]]
name = "capture"
kind = "capture"
config = {{ source = "signal", block_ms = 20.0, stream = "s{k}" }}
[[nodes]]
name = "loudness"
kind = "loudness"
inputs = ["capture"]
[[sinks]]
kind = "jsonl"
path = "{out}"
"""

BLOCK_S = 0.02


def _cpu_seconds() -> dict[int, float]:
    """CPU seconds (user + system) so far of every node process of this benchmark, by pid."""
    times = {}
    for proc in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            cpu = proc.cpu_times()
            times[proc.pid] = cpu.user + cpu.system
    return times


def _pcts(values_s: np.ndarray) -> str:
    p50, p95, p99 = np.percentile(values_s * 1000, [50, 95, 99])
    return f"{p50:.2f} | {p95:.2f} | {p99:.2f}"


async def per_hop(folder: Path, seconds: float) -> None:
    out = folder / "probe.jsonl"
    (folder / "probe.toml").write_text(PROBE.format(out=out))
    await Supervisor(load_graph(folder / "probe.toml"), folder / "probe-run").run(duration_s=seconds)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    rows = rows[len(rows) // 10:]  # skip the first 10 %: start-up
    hops = np.array([np.subtract(r["rx"], r["tx"]) for r in rows]) / 1e9
    print(f"\nper-hop transport latency, {len(rows)} messages (ms)\n| hop | p50 | p95 | p99 |\n|---|---|---|---|")
    for i, name in enumerate(["tick -> relay1", "relay1 -> relay2", "relay2 -> record"]):
        print(f"| {name} | {_pcts(hops[:, i])} |")


async def streams(folder: Path, k: int, seconds: float) -> tuple[bool, str]:
    """Run k demo graphs; once all of them publish, measure `seconds` of steady state, then stop them."""
    supervisors, outs = [], [folder / f"events{i}.jsonl" for i in range(k)]
    for i in range(k):
        (folder / f"demo{i}.toml").write_text(DEMO.format(k=i, out=outs[i]))
        supervisors.append(Supervisor(load_graph(folder / f"demo{i}.toml"), folder / f"run{i}"))
    runs = [asyncio.ensure_future(s.run()) for s in supervisors]
    while not all(out.exists() and out.stat().st_size > 0 for out in outs):
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # let the last-started graphs settle
    window = (time.time(), time.time() + seconds)
    cpu_start = _cpu_seconds()
    await asyncio.sleep(seconds)
    cpu = sum(t - cpu_start.get(pid, t) for pid, t in _cpu_seconds().items()) / seconds  # cores busy
    for supervisor in supervisors:
        supervisor.stopping.set()
    await asyncio.gather(*runs)
    dropped, missing, lat, count = 0.0, 0, [], 0
    for i in range(k):
        registry = run_registry(folder / f"run{i}" / "metrics")
        dropped += sum(registry.get_sample_value("stream_messages_total", {"node": n, "result": "dropped"}) or 0
                       for n in ("loudness", "sinks"))
        events = [json.loads(line) for line in outs[i].read_text().splitlines()]
        missing += int(np.sum(np.diff([round(e["t_audio"] / BLOCK_S) for e in events]) - 1))
        steady = [e for e in events if window[0] <= e["t_publish"] < window[1]]
        count += len(steady)
        lat += [e["t_publish"] - e["t_capture"] - BLOCK_S for e in steady]
    expected = k * seconds / BLOCK_S
    p99 = float(np.percentile(lat, 99)) if lat else float("inf")
    ok = dropped == 0 and missing == 0 and count >= 0.98 * expected and p99 < 0.1
    line = (f"| {k} | {count}/{expected:.0f} | {dropped:.0f} | {missing} | {_pcts(np.array(lat))} | "
            f"{100 * cpu / k:.1f} | {'yes' if ok else 'no'} |")
    return ok, line


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="per-hop run length, s")
    parser.add_argument("--streams", default="1,2,4,8,12,16,24", help="stream counts to try, in order")
    parser.add_argument("--stream-seconds", type=float, default=10.0, help="run length per stream count, s")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench-runtime-") as tmp:
        await per_hop(Path(tmp), args.seconds)
        print("\nconcurrent demo graphs (event latency minus the 20 ms block, ms)\n"
              "| streams | events in window/expected | dropped | missing | p50 | p95 | p99 | CPU % of a core per stream "
              "| sustained |\n|---|---|---|---|---|---|---|---|---|")
        for k in (int(x) for x in args.streams.split(",")):
            folder = Path(tmp) / f"k{k}"
            folder.mkdir()
            ok, line = await streams(folder, k, args.stream_seconds)
            print(f"{line}  (load {os.getloadavg()[0]:.1f})", flush=True)
            if not ok:
                break


if __name__ == "__main__":
    asyncio.run(main())
