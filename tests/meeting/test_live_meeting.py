"""The meeting graph live on the AMI clip dev00 (real-time pace), twice: a restarted segmentation node (issue #21,
bug 1), and the live web page in headless Chromium.

Both runs: configs/meeting.toml with its VAD node replaced by a beats node and a zmq_pub sink added.

Restart run, then `stream diarize --latency 0.5` on the same file (the uninterrupted output): the
segmentation node (the heavy one, with models to load again) is killed -9 at ~3 s of audio, in MEE009's 12 s turn;
the capture goes on and keeps what it sends in its replay ring (`[graph] replay_s`); the graph is stopped 8 s of
audio after the restart (or at the clip's end). Guards: the supervisor restarts the node once; the restarted node
restores its checkpoint and gets the outage replayed, so the live RTTM is not missing the outage (file mode has
speech there) and lines up with file mode's from before the kill to the stop at a lag of at most one step (0.5 s),
agreeing on >= 90 % of the frames (labels aside). Before replay (issue #22), the outage was a gap; before the fix of
issue #21, windows were stamped by counting samples, so every turn after the restart came as early as the lost
span was long. Before the kill, `stream_realtime_factor`
is above 0 for the diarization node too (it read 0.0), and every metric the Grafana dashboard
(configs/grafana/stream.json) queries is in that scrape.

Page run, `stream run --web`'s server beside the graph: at ~17.5 s of audio (both speakers have spoken) Chromium
dumps the stream's page and screenshots it. Guards: turns of both speakers drawn and listed, beat ticks, the
speaker count and latency figures filled in. The screenshot is kept in $STREAM_ARTIFACTS (default
/tmp/stream-artifacts) as web-timeline.png.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from stream.broker import free_port
from stream.graph import NodeEntry, Supervisor, check, load_graph, with_source
from stream.paths import REPO_ROOT
from stream.rttm import Turn, read_rttm

WARM_UP = "import asyncio; from nodes.segmentation.node import SegmentationNode; asyncio.run(SegmentationNode().setup())"

STEP = 0.5  # s, the windows' step: the tolerance on turn times
REPLAY_S = 10.0  # s, configs/meeting.toml's replay ring (the graph default)
KILL_AT = 3.0  # s of audio
AFTER_S = 8.0  # s of audio after the restart before the graph is stopped
PAGE_AT = 17.5  # s of audio when Chromium loads the page (dev00's second voice starts at ~13.5 s)
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1280,800")


def graph_on(source: Path, out: Path, events_port: int):
    """meeting.toml on `source`, VAD swapped for beats, events to a JSONL file and a zmq_pub sink for the page."""
    graph = with_source(load_graph(REPO_ROOT / "configs" / "meeting.toml"), str(source))
    nodes = []
    for node in graph.nodes:
        if node.name == "vad":
            node = NodeEntry("beats", "beats", {}, ("capture",))
        if node.name == "diarization":
            node = replace(node, config={**node.config, "rttm_dir": str(out)})
        if node.name == "sinks":
            sinks = [{"kind": "jsonl", "path": str(out / "events.jsonl")},
                     {"kind": "zmq_pub", "endpoint": f"tcp://127.0.0.1:{events_port}"}]
            node = NodeEntry("sinks", node.kind, {"sinks": sinks}, ("diarization", "beats"))
        nodes.append(node)
    graph = replace(graph, nodes=tuple(nodes), metrics_port=0)
    check(graph)
    return graph


def read_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def speech(turns: list[Turn], start: float, end: float) -> float:
    """Seconds of [start, end) with at least one turn."""
    step = 0.01
    return step * sum(any(t.start <= x < t.end for t in turns) for x in [start + i * step
                                                                          for i in range(int((end - start) / step))])


def best_lag(ours: list[Turn], theirs: list[Turn], start: float, end: float) -> tuple[float, float]:
    """(lag in s, agreement): the shift of `ours` (-6 to 6 s, 20 ms steps) under which its speech/non-speech
    frames agree most with `theirs` over [start, end), and that agreement; ties go to the smallest lag."""
    frames = np.arange(start, end, 0.02)

    def active(turns: list[Turn], times: np.ndarray) -> np.ndarray:
        return np.any([(t.start <= times) & (times < t.end) for t in turns], axis=0)

    target = active(theirs, frames)
    lags = sorted((round(0.02 * i, 2) for i in range(-300, 301)), key=abs)
    scores = {lag: float(np.mean(active(ours, frames + lag) == target)) for lag in lags}
    best = max(lags, key=scores.__getitem__)
    return best, scores[best]


def scrape(port: int) -> str:
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()


def realtime_factors(metrics: str) -> dict[str, float]:
    """node -> stream_realtime_factor in a scrape."""
    return {m[1]: float(m[2]) for m in re.finditer(r'^stream_realtime_factor\{node="([^"]+)"\} (\S+)$', metrics, re.M)}


async def stream_start(events: Path) -> float:
    """Unix time of the stream's audio time 0, from its first event."""
    while not read_events(events):
        await asyncio.sleep(0.1)
    first = read_events(events)[0]
    return first["t_capture"] - first["t_audio"]


async def kill_and_wait_restart(supervisor: Supervisor, t0: float) -> tuple[float, float, str]:
    """Kill -9 the segmentation node at KILL_AT s of audio; (kill, ready again) in s of audio and the metrics
    scraped just before the kill."""
    await asyncio.sleep(max(0.0, t0 + KILL_AT - time.time()))
    metrics = await asyncio.to_thread(scrape, supervisor.metrics_port)
    old = supervisor.procs["segmentation"]
    os.kill(old.pid, signal.SIGKILL)
    killed = time.time()
    while supervisor.procs["segmentation"] is old or supervisor.states["segmentation"] != "ready":
        await asyncio.sleep(0.02)
    return killed - t0, time.time() - t0, metrics


@dataclass
class Outcome:
    killed: float  # s of audio when the segmentation node was killed
    ready: float  # s of audio when its restart was ready
    stopped: float  # s of audio when the graph was stopped
    restarts: int
    live: list[Turn]
    file_mode: list[Turn]
    metrics: str  # the graph's Prometheus endpoint just before the kill


async def restart_scenario(folder: Path, wav: Path) -> Outcome:
    warm = await asyncio.create_subprocess_exec(sys.executable, "-c", WARM_UP)
    assert await warm.wait() == 0
    supervisor = Supervisor(graph_on(wav, folder, free_port()), folder / "run", grace_s=60.0)  # drain a backlog
    run = asyncio.ensure_future(supervisor.run(duration_s=150))
    t0 = await asyncio.wait_for(stream_start(folder / "events.jsonl"), 120)
    killed, ready, metrics = await asyncio.wait_for(kill_and_wait_restart(supervisor, t0), 120)
    await asyncio.sleep(max(0.0, t0 + min(ready + AFTER_S, 30.0) - time.time()))
    stopped = time.time() - t0
    supervisor.stopping.set()  # the nodes drain what they have: the RTTM covers up to here
    assert await asyncio.wait_for(run, 90) == 0
    cli = await asyncio.create_subprocess_exec(  # after the live run: on a slow machine it delayed the restart
        sys.executable, "-m", "stream.cli", "diarize", str(wav), "--latency", "0.5", "--out", str(folder / "cli"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output = (await asyncio.wait_for(cli.communicate(), 300))[0].decode()
    assert cli.returncode == 0, output
    live = read_rttm(next(folder.glob("meeting-*.rttm")))["meeting"]
    file_mode = read_rttm(folder / "cli" / "dev00.rttm")["dev00"]
    return Outcome(killed, ready, stopped, supervisor.restarts["segmentation"], live, file_mode, metrics)


@pytest.fixture(scope="module")
def outcome(tmp_path_factory, data) -> Outcome:
    return asyncio.run(restart_scenario(tmp_path_factory.mktemp("live"), data / "diarization" / "ami" / "dev00.flac"))


async def browse(url: str, folder: Path) -> tuple[str, Path]:
    """(DOM after scripts ran, screenshot path) of `url` in headless Chromium, each in a fresh profile."""
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is not installed: run .ci/setup"
    artifacts = Path(os.environ.get("STREAM_ARTIFACTS", "/tmp/stream-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "web-timeline.png"

    async def chrome(*action: str) -> str:
        profile = tempfile.mkdtemp(prefix="chromium-", dir=folder)
        proc = await asyncio.create_subprocess_exec(
            chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *action, url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, f"chromium {action} exited {proc.returncode}"
        return out.decode()

    dom, _ = await asyncio.gather(chrome("--dump-dom"), chrome(f"--screenshot={shot}"))
    return dom, shot


async def page_scenario(folder: Path, wav: Path) -> tuple[str, Path]:
    """The graph on `wav` with the page's server beside it; the page in Chromium at PAGE_AT s of audio."""
    from stream.web.server import WebServer

    graph = graph_on(wav, folder, free_port())
    supervisor = Supervisor(graph, folder / "run", grace_s=60.0)
    web = WebServer(graph, supervisor.run_dir, 0, folder / "speakers.db")
    await web.start()
    try:
        run = asyncio.ensure_future(supervisor.run(duration_s=150))
        t0 = await asyncio.wait_for(stream_start(folder / "events.jsonl"), 120)
        await asyncio.sleep(max(0.0, t0 + PAGE_AT - time.time()))
        page = await browse(f"{web.url}stream/meeting", folder)
        supervisor.stopping.set()
        assert await asyncio.wait_for(run, 90) == 0
    finally:
        await web.stop()
    return page


def test_restarted_segmentation_replays_its_outage_and_keeps_times(outcome):
    killed, ready, live, file_mode = outcome.killed, outcome.ready, outcome.live, outcome.file_mode
    print(f"killed at {killed:.2f} s of audio, ready again at {ready:.2f} s")
    assert outcome.restarts == 1
    assert 1.0 < ready - killed < 25.0  # models loaded again (21 s seen on a machine loaded 12 x its cores)

    # the outage is replayed (what the ring still held when the node asked: its last replay_s, 10 s, of audio)
    replayed = max(killed, ready - 0.8 * REPLAY_S)
    assert speech(file_mode, replayed, ready) > 0.3, "file mode has speech in the outage: a gap would show"
    lag, agreement = best_lag(live, file_mode, replayed, ready)
    print(f"outage {replayed:.1f}-{ready:.1f} s: speech lag {lag:+.2f} s, agreement {agreement:.2f}")
    assert lag == 0.0 and agreement >= 0.9

    # from before the kill to the stop the turns keep their times (labels aside: the clustering may take another
    # path, so change points are only printed): speech lines up with file mode's at a lag of at most a step
    start, end = max(0.0, killed - 2.0), outcome.stopped - 1.0  # the last second may still be undecided at the stop
    lag, agreement = best_lag(live, file_mode, start, end)
    theirs = sorted({round(x, 3) for t in file_mode for x in (t.start, t.end) if start < x < end})
    near = sum(any(abs(y - x) <= STEP for t in live for y in (t.start, t.end)) for x in theirs)
    print(f"{start:.1f}-{end:.1f} s: speech lag {lag:+.2f} s (agreement {agreement:.2f}); {near} of {len(theirs)} "
          f"change points with a live twin within {STEP} s")
    assert abs(lag) <= STEP and agreement >= 0.9


def test_web_page_shows_the_live_timeline(tmp_path, data):
    dom, screenshot = asyncio.run(page_scenario(tmp_path, data / "diarization" / "ami" / "dev00.flac"))
    labels = set(re.findall(r'class="turn" data-label="([^"]+)"', dom))
    rows = dom.count('class="turn-row"')
    beats = dom.count('class="beat"')
    speakers = re.search(r'id="speakers">(\d+)<', dom)
    latency = re.search(r'id="latency">([^<]+)<', dom)
    print(f"page: turns of {sorted(labels)}, {rows} listed, {beats} beat ticks, latency {latency and latency[1]}; "
          f"screenshot {screenshot}")
    assert labels == {"SPEAKER_0", "SPEAKER_1"} and rows >= 3
    assert beats >= 10
    assert speakers and speakers[1] == "2"
    assert latency and re.fullmatch(r"\d+ ms / \d+ ms", latency[1])
    assert screenshot.stat().st_size > 10_000


def test_realtime_factor_and_dashboard_metrics_are_exported(outcome):
    rtf = realtime_factors(outcome.metrics)
    print("stream_realtime_factor before the kill:", rtf)
    assert rtf["diarization"] > 0 and rtf["segmentation"] > 0  # issue #21: the diarization node's read 0.0
    dashboard = json.loads((REPO_ROOT / "configs" / "grafana" / "stream.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    wanted = {name for expr in exprs for name in re.findall(r"\bstream_[a-z_]+", expr)}
    exported = set(re.findall(r"^(stream_[a-z_]+)[{ ]", outcome.metrics, re.M))
    assert {"stream_event_latency_seconds_bucket", "stream_realtime_factor", "stream_node_restarts_total",
            "stream_queue_depth", "stream_messages_total"} <= wanted
    assert wanted <= exported, f"queried but not exported: {sorted(wanted - exported)}"


def test_prometheus_scrapes_the_default_endpoint():
    config = yaml.safe_load((REPO_ROOT / "configs" / "prometheus.yml").read_text())
    targets = [t for job in config["scrape_configs"] for s in job["static_configs"] for t in s["targets"]]
    graph = load_graph(REPO_ROOT / "configs" / "demo.toml")
    assert f"{graph.metrics_host}:{graph.metrics_port}" in targets
