"""Live web timeline (`stream run ... --web`): one page per stream, fed by server-sent events from the event bus.

Why in the `stream run` process and fed from the zmq_pub sink: the page shows exactly what users receive (the
same events, with `t_publish` and `latency`), the graph's nodes need no change, and the page costs nothing when
off. A `Feed` subscribes to the graph's ZeroMQ PUB sink and keeps each stream's recent events (a page opened
late still shows the last `HISTORY` events); each page holds one EventSource on `/stream/<id>/events`.

Enrolment: the server also keeps the last `AUDIO_S` seconds of each stream's audio (a SUB on the capture node's
output). The page's form posts a turn (label, start, stop) and a name; the turn's audio goes through
`stream enroll NAME turn.wav --db DB` (a child process: the CAM++ model stays out of this one), and the page
shows the name for that label from then on. A diarization node started with `enrolled = DB` names the speaker
in its events on the next run.

Bound to 127.0.0.1 only: the page can write to the enrolment store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import tempfile
import urllib.parse
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import uvicorn
import zmq
import zmq.asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from stream.errors import ConfigError, MessageError
from stream.graph import SINKS_NODE, Graph
from stream.message import decode

log = logging.getLogger(__name__)

HISTORY = 5000  # events kept per stream for pages opened late
AUDIO_S = 300.0  # s of audio kept per stream for enrolment
PAGE = Path(__file__).with_name("page.html")


class Feed:
    """Events per stream (recent history + live listeners), names given by enrolment, recent audio per stream."""

    def __init__(self) -> None:
        self.events: dict[str, deque[dict[str, Any]]] = {}
        self.names: dict[str, dict[str, str]] = {}  # stream -> label -> enrolled name
        self.listeners: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}
        self.audio: dict[str, deque[tuple[float, np.ndarray]]] = {}  # stream -> (Unix s of first sample, mono)
        self.rate = 0

    def add(self, event: dict[str, Any]) -> None:
        stream = str(event.get("stream", ""))
        self.events.setdefault(stream, deque(maxlen=HISTORY)).append(event)
        for queue in self.listeners.get(stream, ()):
            queue.put_nowait(event)

    def name(self, stream: str, label: str, name: str) -> None:
        self.names.setdefault(stream, {})[label] = name
        self.add({"type": "names", "stream": stream, "names": self.names[stream]})

    def add_audio(self, stream: str, t_wall: float, samples: np.ndarray, rate: int) -> None:
        self.rate = rate
        blocks = self.audio.setdefault(stream, deque())
        blocks.append((t_wall, samples))
        while blocks and blocks[-1][0] - blocks[0][0] > AUDIO_S:
            blocks.popleft()

    def cut(self, stream: str, start_wall: float, stop_wall: float) -> np.ndarray:
        """The stream's audio between two Unix times (what is still kept of it)."""
        parts = []
        for t, samples in self.audio.get(stream, ()):
            first = max(0, round((start_wall - t) * self.rate))
            last = min(len(samples), round((stop_wall - t) * self.rate))
            if last > first:
                parts.append(samples[first:last])
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    @contextlib.contextmanager
    def listen(self, stream: str) -> Any:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.listeners.setdefault(stream, set()).add(queue)
        try:
            yield queue
        finally:
            self.listeners[stream].discard(queue)


def event_endpoint(graph: Graph) -> str:
    """The graph's zmq_pub sink endpoint (the page's feed); ConfigError if the graph has none."""
    sinks = next((n for n in graph.nodes if n.name == SINKS_NODE), None)
    tables = sinks.config.get("sinks", ()) if sinks else ()
    endpoint = next((t.get("endpoint") for t in tables if t.get("kind") == "zmq_pub"), None)
    if not endpoint:
        raise ConfigError(f"--web reads the events from a zmq_pub sink; graph {graph.name!r} has none: add "
                          '[[sinks]] kind = "zmq_pub" with endpoint = "tcp://127.0.0.1:5560"')
    return endpoint.replace("0.0.0.0", "127.0.0.1").replace("*", "127.0.0.1")


def build_app(feed: Feed, enrol_db: Path) -> Starlette:
    async def index(request: Request) -> Response:
        streams = sorted(s for s in feed.events if s)
        if len(streams) == 1:
            return RedirectResponse(f"/stream/{streams[0]}", status_code=307)
        links = "".join(f'<li><a href="/stream/{s}">{s}</a></li>' for s in streams) or "<li>no events yet</li>"
        return HTMLResponse(f"<!doctype html><title>stream</title><h1>Streams</h1><ul>{links}</ul>"
                            '<script>setTimeout(() => location.reload(), 2000)</script>')

    async def page(request: Request) -> Response:
        stream = request.path_params["stream"]
        state = {"stream": stream, "events": list(feed.events.get(stream, ())), "names": feed.names.get(stream, {})}
        html = PAGE.read_text().replace("__STATE__", json.dumps(state).replace("</", "<\\/"))
        return HTMLResponse(html)

    async def events(request: Request) -> Response:
        stream = request.path_params["stream"]

        async def body() -> AsyncIterator[str]:
            with feed.listen(stream) as queue:
                yield ": connected\n\n"
                while True:
                    try:
                        async with asyncio.timeout(15.0):  # not wait_for: it can drop a cancel on 3.11
                            event = await queue.get()
                    except TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    yield f"data: {json.dumps(event)}\n\n"

        return StreamingResponse(body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    async def enrol(request: Request) -> Response:
        stream = request.path_params["stream"]
        form = {k: v[0] for k, v in urllib.parse.parse_qs((await request.body()).decode(errors="replace")).items()}
        try:  # the page's form is urlencoded: parsed here, no multipart dependency
            label, name = form["label"], form["name"].strip()
            start, stop = float(form["start"]), float(form["stop"])
        except (KeyError, ValueError):
            return JSONResponse({"error": "need label, name, start and stop (s)"}, status_code=400)
        t0 = next((e["t_capture"] - e["t_audio"] for e in feed.events.get(stream, ())
                   if e.get("type") == "speaker.turn"), None)
        audio = feed.cut(stream, t0 + start, t0 + stop) if t0 is not None else np.zeros(0)
        if not name or len(audio) < 0.5 * max(feed.rate, 1):
            return JSONResponse({"error": "need a name and at least 0.5 s of the turn's audio (is it older than "
                                          f"{AUDIO_S:.0f} s?)"}, status_code=400)
        error = await enrol_audio(name, audio, feed.rate, enrol_db)
        if error:
            return JSONResponse({"error": error}, status_code=400)
        feed.name(stream, label, name)
        return RedirectResponse(f"/stream/{stream}", status_code=303)

    return Starlette(routes=[Route("/", index), Route("/stream/{stream}", page),
                             Route("/stream/{stream}/events", events),
                             Route("/stream/{stream}/enrol", enrol, methods=["POST"])])


async def enrol_audio(name: str, audio: np.ndarray, rate: int, db: Path) -> str:
    """`stream enroll NAME <audio> --db DB` in a child process; "" or its error output."""
    with tempfile.TemporaryDirectory(prefix="stream-enrol-") as folder:
        wav = Path(folder) / "turn.wav"
        sf.write(wav, audio, rate)
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "stream.cli", "enroll", name, str(wav),
                                                    "--db", str(db), stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
        output = (await proc.communicate())[0].decode()
    return "" if proc.returncode == 0 else output.strip()[-500:]


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the supervisor owns Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield


class WebServer:
    """The page's server and its two subscriptions (events from the zmq_pub sink, pcm from capture nodes)."""

    def __init__(self, graph: Graph, run_dir: Path, port: int, enrol_db: Path) -> None:
        self.endpoint = event_endpoint(graph)
        self.audio_endpoints = [f"ipc://{run_dir / (n.name + '.sock')}" for n in graph.nodes
                                if n.kind == "capture" and not n.endpoint]
        self.feed = Feed()
        self.server = _Server(uvicorn.Config(build_app(self.feed, enrol_db), host="127.0.0.1", port=port,
                                             log_level="warning", lifespan="off"))
        self.ctx = zmq.asyncio.Context()
        self.tasks: list[asyncio.Task[None]] = []

    @property
    def url(self) -> str:
        sockets = [s for server in getattr(self.server, "servers", []) for s in server.sockets]
        port = sockets[0].getsockname()[1] if sockets else self.server.config.port
        return f"http://127.0.0.1:{port}/"

    async def start(self) -> None:
        self.tasks = [asyncio.ensure_future(self.server.serve()), asyncio.ensure_future(self._events()),
                      *(asyncio.ensure_future(self._audio(e)) for e in self.audio_endpoints)]
        while not self.server.started:
            if self.tasks[0].done():
                self.tasks[0].result()  # the port is taken: raise
                raise ConfigError(f"the web page could not start on 127.0.0.1:{self.server.config.port}")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self.server.should_exit = True
        for task in self.tasks[1:]:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.ctx.destroy(linger=0)

    async def _events(self) -> None:
        sock = self.ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.connect(self.endpoint)
        while True:
            _topic, payload = await sock.recv_multipart()
            with contextlib.suppress(ValueError):
                event = json.loads(payload)
                if isinstance(event, dict):
                    self.feed.add(event)

    async def _audio(self, endpoint: str) -> None:
        sock = self.ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.SUBSCRIBE, b"pcm/")
        sock.connect(endpoint)
        while True:
            frames = await sock.recv_multipart()
            with contextlib.suppress(MessageError):
                msg = decode(frames[1:])
                samples = msg.data if msg.data.ndim == 1 else msg.data.mean(axis=1)
                self.feed.add_audio(msg.header.stream, msg.header.t_wall, samples.astype(np.float32), msg.header.sr)
