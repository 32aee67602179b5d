"""Network sources against local servers: a WebSocket client pushing PCM, ffmpeg reading a live HTTP stream that
drops and comes back, the stamps of both (backlogs in the past, outages as gaps), refused clients, no orphan
ffmpeg. Everything real: the `websockets` client, ffmpeg, an asyncio HTTP server (livehttp.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import textwrap
import time

import numpy as np
import psutil
import pytest
import soundfile as sf
from prometheus_client import REGISTRY
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from nodes.capture.clock import NS, LiveClock
from nodes.capture.node import CaptureNode
from stream.errors import ConfigError
from stream.graph import load_graph, with_source
from stream.message import Message
from stream.paths import REPO_ROOT
from tests.capture.livehttp import PacedWavServer, index_of

RATE = 16_000
BLOCK_NS = 20_000_000


def counter(name: str, node: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"node": node, **labels}) or 0.0


class Collector:
    """Runs a capture node's produce() in a task, keeping each message and when it came out."""

    def __init__(self, node: CaptureNode) -> None:
        self.node = node
        self.messages: list[tuple[Message, int]] = []
        self.task: asyncio.Task | None = None

    async def __aenter__(self) -> Collector:
        await self.node.setup()
        self.task = asyncio.ensure_future(self._run())
        return self

    async def _run(self) -> None:
        async for msg in self.node.produce():
            self.messages.append((msg, time.monotonic_ns()))

    async def wait_for(self, count: int, timeout: float = 20.0) -> None:
        async def enough() -> None:
            while len(self.messages) < count:
                assert self.task is not None and not self.task.done(), "capture node stopped"
                await asyncio.sleep(0.01)
        await asyncio.wait_for(enough(), timeout)

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    def audio(self) -> np.ndarray:
        return np.concatenate([m.data[:, 0] for m, _ in self.messages])

    def stamps(self) -> np.ndarray:
        return np.array([m.header.t_capture_ns for m, _ in self.messages], np.int64)


def test_live_clock_stamps_a_backlog_in_the_past_and_an_outage_as_a_gap():
    """ffmpeg-like arrivals: 2 s of audio captured from T come at once at T + 2 s (probing), then 20 ms blocks
    1 ms after capture; the input drops for 1.5 s and the next connection starts the same way. Every block's
    stamp is its true capture time within 1 ms, never earlier; the gap between the connections is 1.5 s."""
    clock = LiveClock(RATE)
    truth, stamps = [], []
    for start in (10 * NS, 16 * NS):  # connection 2 starts 1.5 s after the end of the 4.5 s of connection 1
        pieces = [(k * 320, 320) for k in range(225)]  # 4.5 s in 20 ms pieces
        for k, (first, frames) in enumerate(pieces):
            captured_end = start + (first + frames) * NS // RATE
            arrival = max(start + 2 * NS, captured_end) + 1_000_000 + (k % 7) * 3_000_000
            for block in clock.push(np.zeros((frames, 1), np.float32), arrival):
                stamps.append(block.t_capture_ns)
            truth.append(start + first * NS // RATE)
        stamps += [b.t_capture_ns for b in clock.reconnect()]
    errors = np.array(stamps) - np.array(truth)
    assert len(stamps) == 450
    assert errors.min() >= 0 and errors.max() <= 1_000_000
    assert stamps[225] - (stamps[224] + BLOCK_NS) == pytest.approx(1.5 * NS, abs=2e6)


async def test_websocket_reproduces_the_signal_exactly_paced_and_declared(tmp_path):
    """A client declares f32le 16 kHz and sends 3 s of noise at once, in 999-byte frames (samples cut between
    frames): the blocks are that noise bit for bit, stamped 20 ms apart from when it came (a backlog: the
    connection's start, 3 s before the last byte arrived), and none comes out before its audio was due."""
    noise = np.random.default_rng(1).uniform(-0.9, 0.9, 3 * RATE).astype("<f4")
    node = CaptureNode.from_table({"source": "websocket", "listen": "127.0.0.1:0", "stream": "ws1"}, "ws1")
    async with Collector(node) as run:
        async with connect(f"ws://127.0.0.1:{node.source.port}/any/path") as ws:
            greeting = json.loads(await ws.recv())
            await ws.send(json.dumps({"rate": RATE, "format": "f32le", "channels": 1}))
            payload = noise.tobytes()
            for k in range(0, len(payload), 999):
                await ws.send(payload[k:k + 999])
            sent_ns = time.monotonic_ns()
            await run.wait_for(150)
    assert greeting == {"stream": "ws1", "rate": RATE, "format": "f32le", "channels": 1}
    assert np.array_equal(run.audio()[:len(noise)], noise)
    stamps = run.stamps()
    assert list(np.diff(stamps[:150])) == [BLOCK_NS] * 149
    assert abs(stamps[0] + 3 * NS - sent_ns) < 0.3 * NS  # the burst's start: 3 s of audio before it was all in
    released = np.array([t for _, t in run.messages])
    assert (released >= stamps + BLOCK_NS - 1_000_000).all()  # never before its last sample was 'captured'


async def test_websocket_reconnection_is_a_gap_s16le_48k_resampled_and_counted():
    """An app sends a 440 Hz tone as int16 at 48 kHz in real time (20 ms frames), goes away for 1 s and comes
    back: the node resamples to 16 kHz (within 1e-3 of the tone), stamps jump by 1 s (+-60 ms) where the client
    was away, and the reconnection and its gap are counted."""
    node = CaptureNode.from_table({"source": "websocket", "listen": "127.0.0.1:0", "ws_rate": 48_000,
                                   "ws_format": "s16le", "stream": "ws2"}, "ws2")
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(48_000 * 3) / 48_000) * 32767).astype("<i2")

    async def play(first: int, frames: int) -> None:
        async with connect(f"ws://127.0.0.1:{node.source.port}") as ws:
            await ws.recv()
            t0 = time.monotonic()
            for k, at in enumerate(range(first, first + frames, 960)):
                await asyncio.sleep(max(0.0, t0 + k * 0.02 - time.monotonic()))
                await ws.send(tone[at:at + 960].tobytes())

    reconnects = counter("stream_capture_reconnects_total", "ws2")
    async with Collector(node) as run:
        await play(0, 48_000)
        await asyncio.sleep(1.0)
        await play(48_000, 48_000)
        await run.wait_for(98)
    stamps = run.stamps()
    steps = np.diff(stamps) - BLOCK_NS
    jump = int(np.argmax(steps))
    assert 48 <= jump <= 51 and steps[jump] == pytest.approx(NS, abs=60e6)
    assert np.abs(np.delete(steps, jump)).max() < 5e6
    assert counter("stream_capture_reconnects_total", "ws2") - reconnects == 1
    assert counter("stream_capture_gap_seconds_total", "ws2") == pytest.approx(steps[jump] / NS, abs=0.03)
    y = run.audio()[:45 * 320]
    ideal = 0.5 * np.sin(2 * np.pi * 440 * np.arange(len(y)) / RATE)
    assert np.abs(y - ideal)[400:].max() < 2e-3


async def test_websocket_refuses_a_second_client_and_wrong_formats_and_keeps_going():
    """While one client streams, a second is refused (1013, 'already has a client'); a client declaring 48 kHz
    (1003, names 16000 and ws_rate) or sending int16 as float32 (1007) is refused with a reason; the first
    client's audio keeps coming and the three refusals are counted."""
    node = CaptureNode.from_table({"source": "websocket", "listen": "127.0.0.1:0", "stream": "ws3"}, "ws3")
    url = lambda: f"ws://127.0.0.1:{node.source.port}"  # noqa: E731 - the port is known once the node is set up

    async def refused(*messages: str | bytes) -> tuple[int, str]:
        async with connect(url()) as ws:
            reply = json.loads(await ws.recv())  # the greeting, or at once the refusal
            if "error" not in reply:
                for message in messages:
                    await ws.send(message)
                reply = json.loads(await ws.recv())
            error = reply["error"]
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return ws.close_code, error

    before = counter("stream_capture_problems_total", "ws3", problem="rejected")
    async with Collector(node) as run:
        await asyncio.sleep(0.05)  # the node's server is up once produce() runs
        async with connect(url()) as first:
            await first.recv()
            await first.send(np.zeros(8000, "<f4").tobytes())
            busy_code, busy = await refused()
            loud = (np.sin(np.arange(4000) / 5) * 30000).astype("<i2").tobytes()
            await first.close()
        rate_code, rate = await refused(json.dumps({"rate": 48000, "format": "f32le"}))
        data_code, data = await refused(loud)
        async with connect(url()) as again:
            await again.recv()
            await again.send(np.full(8000, 0.25, "<f4").tobytes())
            await run.wait_for(50)
    assert busy_code == 1013 and "already has a client" in busy
    assert rate_code == 1003 and "16000" in rate and "ws_rate" in rate
    assert data_code == 1007 and "not float32" in data
    assert counter("stream_capture_problems_total", "ws3", problem="rejected") - before == 3
    audio = run.audio()
    assert np.count_nonzero(audio == 0.25) == 8000  # the last client's audio came through, untouched


async def test_readme_ffmpeg_to_websocket_pipe(tmp_path):
    """The README's sender: `ffmpeg -re ... -f f32le - | python -c <websockets client>` delivers a file's audio."""
    t = np.arange(RATE * 2) / RATE
    sf.write(tmp_path / "tone.wav", 0.5 * np.sin(2 * np.pi * 300 * t), RATE, subtype="FLOAT")
    node = CaptureNode.from_table({"source": "websocket", "listen": "127.0.0.1:0", "stream": "ws4"}, "ws4")
    blocks = (REPO_ROOT / "README.md").read_text().split("```")
    command = next(b.removeprefix("bash\n") for b in blocks if "-f f32le" in b and "websockets" in b)
    command = command.replace("talk.mp3", str(tmp_path / "tone.wav")).replace(".venv/bin/python", sys.executable)
    async with Collector(node) as run:
        shell = await asyncio.create_subprocess_shell(command.replace("7007", str(node.source.port)),
                                                      stderr=asyncio.subprocess.PIPE)
        await run.wait_for(95)
        _, err = await shell.communicate()
    assert shell.returncode == 0 and not err, err.decode()
    y = run.audio()[:95 * 320]
    ideal = 0.5 * np.sin(2 * np.pi * 300 * np.arange(len(y)) / RATE)
    assert np.abs(y - ideal).max() < 1e-6


def live_offsets(run: Collector, server: PacedWavServer) -> tuple[np.ndarray, np.ndarray]:
    """Per message: its stamp minus when the server made its first sample (ns), and whether its samples are
    consecutive samples of the server's live signal."""
    offsets, whole = [], []
    for msg, _ in run.messages:
        idx = index_of(msg.data[:, 0])
        latest = (msg.header.t_capture_ns - server.epoch_ns) * RATE // NS  # the sample being made at the stamp
        first = latest - (latest - idx[0]) % 65536  # the last sample before it with that code
        offsets.append(msg.header.t_capture_ns - (server.epoch_ns + first * NS // RATE))
        whole.append(bool(np.all(np.diff(idx) % 65536 == 1)))
    return np.array(offsets), np.array(whole)


async def test_http_stream_through_ffmpeg_reconnects_and_the_outage_is_a_gap():
    """ffmpeg reads a live HTTP WAV stream; the server dies for 1.5 s and comes back on the same port. Every
    block but the one spanning the break is consecutive samples of the server's signal, exact; every stamp is
    within 0-150 ms after the server made that audio (ffmpeg's probing backlog and the outage included), so the
    outage is a gap in the stamps as long as the audio that was never sent; drop, reconnection, failed
    starts and the gap are counted."""
    server = PacedWavServer(RATE)
    await server.start()
    node = CaptureNode.from_table({"source": "url", "url": server.url, "stream": "cam"}, "cam")
    gap_before = counter("stream_capture_gap_seconds_total", "cam")
    async with Collector(node) as run:
        await run.wait_for(50)
        await asyncio.sleep(0.5)  # the backlog of ffmpeg's probing is out; now live
        await server.stop()
        await asyncio.sleep(1.5)
        await server.start()
        count = len(run.messages)
        await run.wait_for(count + 50, timeout=30)
    offsets, whole = live_offsets(run, server)
    stamps = run.stamps()
    steps = np.diff(stamps) - BLOCK_NS
    jump = int(np.argmax(steps))
    assert steps[jump] > 1.4 * NS and np.abs(np.delete(steps, jump)).max() == 0
    assert whole.sum() >= len(whole) - 1 and (whole[:jump + 1].all() or whole[jump + 1:].all())
    print(f"stamp - server time of the audio: {offsets.min() / 1e6:.1f} to {offsets.max() / 1e6:.1f} ms; "
          f"gap {steps[jump] / NS:.2f} s")
    assert offsets.min() >= -1_000_000 and offsets.max() < 150_000_000, (offsets.min(), offsets.max())
    assert counter("stream_capture_problems_total", "cam", problem="disconnected") == 1
    assert counter("stream_capture_reconnects_total", "cam") == 1
    assert counter("stream_capture_problems_total", "cam", problem="connect_failed") >= 1
    assert counter("stream_capture_gap_seconds_total", "cam") - gap_before == pytest.approx(
        steps[jump] / NS, abs=0.021)
    await server.stop()


async def test_ffmpeg_child_dies_with_a_killed_capture_process():
    """kill -9 of a capture process reading a stream leaves no ffmpeg behind (PR_SET_PDEATHSIG)."""
    server = PacedWavServer(RATE)
    await server.start()
    script = textwrap.dedent(f"""
        import asyncio
        from nodes.capture.node import CaptureNode
        async def main():
            node = CaptureNode.from_table({{"source": "url", "url": "{server.url}"}}, "orphan")
            await node.setup()
            async for _ in node.produce():
                pass
        asyncio.run(main())
    """)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", script, cwd=REPO_ROOT)
    for _ in range(300):  # ffmpeg connected to the server: it is reading the stream
        children = psutil.Process(proc.pid).children()
        if children and server.connections:
            break
        await asyncio.sleep(0.05)
    assert [c.name() for c in children] == ["ffmpeg"]
    os.kill(proc.pid, signal.SIGKILL)
    await proc.wait()
    gone, alive = psutil.wait_procs(children, timeout=5)
    assert not alive
    await server.stop()


def test_source_urls_choose_network_sources_and_bad_ones_are_clear():
    graph = load_graph(REPO_ROOT / "configs" / "meeting.toml")
    assert with_source(graph, "ws://127.0.0.1:7010/mic").node("capture").config["listen"] == "127.0.0.1:7010"
    assert with_source(graph, "rtsp://u:p@cam/1").node("capture").config["url"] == "rtsp://u:p@cam/1"
    with pytest.raises(ConfigError, match="schemes") as bad:
        with_source(graph, "gopher://user:secret@cam/1")
    assert "secret" not in str(bad.value)
    with pytest.raises(ConfigError, match="HOST:PORT"):
        CaptureNode.from_table({"source": "websocket", "listen": "7007"}, "c")
    taken = CaptureNode.from_table({"source": "websocket", "listen": "127.0.0.1:0"}, "c")
    asyncio.run(taken.setup())
    port = taken.source.port
    with pytest.raises(Exception, match="cannot listen"):
        asyncio.run(CaptureNode.from_table({"source": "websocket", "listen": f"127.0.0.1:{port}"}, "d").setup())
    taken.source.sock.close()
