"""Network sources: PCM pushed to a WebSocket (a browser, an app), and streams ffmpeg reads (a camera's RTSP
microphone, HTTP radio), as block sources with the same capture stamps as a device.

Stamps come from arrival times through `clock.LiveClock`: within a connection audio is sample-exact and never
faster than real time (a sender ahead of the clock is paced, TCP holds it back), and when the input drops and
comes back the time it was away is a gap in the stamps, as a restarted node's downtime is downstream. Drops,
reconnections and the audio time they cost are counted (`stream_capture_problems_total{problem="disconnected"}`,
`stream_capture_reconnects_total`, `stream_capture_gap_seconds_total`).

WebSocket wire format (one client per stream at a time):
  1. the client connects to ws://HOST:PORT/ (any path); the server sends one text frame saying what it takes,
     e.g. {"stream": "mic0", "rate": 16000, "format": "f32le", "channels": 1};
  2. the client may send one text frame first declaring what it sends, {"rate": 16000, "format": "f32le"}: a
     mismatch is refused at once instead of being heard as noise;
  3. then binary frames of mono PCM at that rate: "f32le" = little-endian float32 in [-1, 1] (a browser's
     Float32Array), "s16le" = little-endian int16; any number of bytes per frame (up to 1 MiB), a sample may
     straddle two frames;
  4. a refused client gets a text frame {"error": "what is wrong and how to fix it"} and a close code: 1013 (the
     stream already has a client), 1003 (a header that does not match), 1007 (bytes that are not such audio).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import socket
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from websockets.exceptions import ConnectionClosed

from nodes.capture.clock import NS, LiveClock
from nodes.capture.conform import Block, check_rate
from stream.errors import AudioError, ConfigError
from stream.metrics import CAPTURE_GAP, CAPTURE_PROBLEMS, CAPTURE_RECONNECTS

log = logging.getLogger(__name__)

FORMATS = {"f32le": np.dtype("<f4"), "s16le": np.dtype("<i2")}  # ffmpeg's names for the two sample formats
URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "srt", "udp", "tcp")  # what source "url" hands to ffmpeg
MAX_FLOAT = 16.0  # |sample| above this (24 dB over full scale) is not float audio: int16 bytes read as float32
MAX_MESSAGE = 1 << 20  # bytes per WebSocket frame
BACKOFF_S = (0.5, 8.0)  # first and longest wait before ffmpeg is started again; doubles after each failed start
STALL_S = 10.0  # s without a byte from ffmpeg before it is restarted (a stream that hangs instead of closing)


def parse_listen(listen: str) -> tuple[str, int]:
    """"127.0.0.1:7007" -> ("127.0.0.1", 7007); ConfigError saying the form otherwise."""
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"capture listen {listen!r} must be HOST:PORT, e.g. 127.0.0.1:7007 (0.0.0.0:7007 for "
                          "every interface)")
    return host.strip("[]"), int(port)


def check_url(url: str) -> str:
    """A URL ffmpeg may read for source "url"; ConfigError naming the schemes otherwise."""
    scheme = urlsplit(url).scheme
    if scheme not in URL_SCHEMES or "://" not in url:
        raise ConfigError(f"capture url {redact(url)!r}: give a stream URL with one of the schemes {URL_SCHEMES}, "
                          "e.g. rtsp://camera.local:554/stream1 (a local file is source \"file\")")
    return url


def redact(url: str) -> str:
    """The URL with its password hidden: camera URLs carry credentials, logs must not."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


class PcmDecoder:
    """Stateful step: bytes of mono PCM in whatever pieces they come -> float32 [frames, 1]; a sample cut
    between two pieces is kept for the next one."""

    def __init__(self, sample_format: str) -> None:
        self.format = sample_format
        self.dtype = FORMATS[sample_format]
        self._rest = b""

    def reset(self) -> None:
        self._rest = b""

    def __call__(self, data: bytes) -> np.ndarray:
        data = self._rest + data
        usable = len(data) - len(data) % self.dtype.itemsize
        self._rest = data[usable:]
        samples = np.frombuffer(data, self.dtype, count=usable // self.dtype.itemsize).astype(np.float32)
        if self.dtype.kind == "i":
            samples /= 32768.0
        elif len(samples) and not (np.isfinite(samples).all() and np.abs(samples).max() <= MAX_FLOAT):
            bad = samples[~np.isfinite(samples) | (np.abs(samples) > MAX_FLOAT)][0]
            raise AudioError(f"bytes that are not float32 audio in [-1, 1] (a sample reads {bad:g}): send "
                             'little-endian float32, or declare {"format": "s16le"} for 16-bit integers')
        return samples[:, None]


class LiveInput:
    """What the network sources share: decoding, stamps (`LiveClock`), and the accounting of connections,
    drops and the gaps they leave."""

    def __init__(self, rate: int, sample_format: str, node: str, what: str) -> None:
        self.rate = rate
        self.node = node
        self.what = what  # "WebSocket 127.0.0.1:7007", "stream rtsp://cam/1": for log lines
        self.clock = LiveClock(rate)
        self.decode = PcmDecoder(sample_format)
        self.delivered = False  # the current connection has sent audio
        self._fresh = False  # none of the current connection's audio has been stamped yet

    def connected(self) -> None:
        self.decode.reset()
        self.delivered = False
        self._fresh = True

    def push(self, data: bytes, arrival_ns: int) -> list[Block]:
        """The blocks ready to go out once `data` came; AudioError if it is not audio."""
        samples = self.decode(data)
        if not len(samples):
            return []
        self.delivered = True
        end_before = self.clock.end_ns
        return self._account(self.clock.push(samples, arrival_ns), end_before)

    def hold_s(self) -> float | None:
        """Seconds until the connection's held start is due (`release`), None if nothing is held."""
        return self.clock.hold_s(time.monotonic_ns())

    def release(self) -> list[Block]:
        """The held start of the connection, stamped: when no more audio came to trigger it."""
        end_before = self.clock.end_ns
        return self._account(self.clock.release(), end_before)

    def disconnected(self, why: str) -> list[Block]:
        """The connection ended: count it as a drop if it had sent audio; what it left held, stamped."""
        if self.delivered:
            CAPTURE_PROBLEMS.labels(node=self.node, problem="disconnected").inc()
            log.warning("%s: input lost (%s); its absence will be a gap in audio time", self.what, why)
        end_before = self.clock.end_ns
        return self._account(self.clock.reconnect(), end_before)

    def _account(self, blocks: list[Block], end_before: int | None) -> list[Block]:
        """Count the gap before a connection's first block when it follows an earlier connection's audio."""
        if blocks and self._fresh:
            self._fresh = False
            if end_before is not None:
                gap_s = (blocks[0].t_capture_ns - end_before) / NS
                CAPTURE_RECONNECTS.labels(node=self.node).inc()
                CAPTURE_GAP.labels(node=self.node).inc(gap_s)
                log.info("%s: audio again after a gap of %.2f s", self.what, gap_s)
        return blocks

    async def captured(self, block: Block) -> None:
        """Wait until the block's last sample is in the past: a sender ahead of real time is paced, not believed."""
        end_ns = block.t_capture_ns + len(block.samples) * NS // self.rate
        await asyncio.sleep(max(0.0, (end_ns - time.monotonic_ns()) / NS))


class WebSocketSource:
    """A WebSocket server taking mono PCM from one client at a time (the wire format is in this module's
    docstring). The port is bound when the source is made, so a taken port fails the node's start."""

    channels = 1

    def __init__(self, listen: str, rate: int, sample_format: str, stream: str, node: str = "capture",
                 queue_messages: int = 64) -> None:
        self.host, self.port = parse_listen(listen)
        self.rate = check_rate(rate, "WebSocket input")
        self.format = sample_format
        self.stream = stream
        self.node = node
        self.queue_messages = queue_messages  # frames stamped but not yet played out (a sender ahead of time)
        self.client: str | None = None  # the connected client's address
        try:
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            self.sock = socket.create_server((self.host, self.port), family=family)
        except OSError as exc:
            raise AudioError(f"cannot listen on {listen} for the WebSocket input: {exc}; pick another port "
                             "(listen = \"127.0.0.1:PORT\", or --source ws://127.0.0.1:PORT)") from exc
        self.port = self.sock.getsockname()[1]  # the one chosen when listen asked for port 0
        self.input = LiveInput(self.rate, sample_format, node, f"WebSocket {self.host}:{self.port}")

    def greeting(self) -> str:
        return json.dumps({"stream": self.stream, "rate": self.rate, "format": self.format, "channels": 1})

    def check_header(self, text: str) -> None:
        """A client's declaration of what it sends: AudioError if it is not what this stream takes."""
        takes = f"this stream takes {self.rate} Hz {self.format} mono"
        try:
            header = json.loads(text)
        except json.JSONDecodeError:
            header = None
        if not isinstance(header, dict):
            raise AudioError(f'a text frame that is not a JSON object ({text[:40]!r}): send {self.greeting()}')
        unknown = sorted(set(header) - {"rate", "format", "channels"})
        if unknown:
            raise AudioError(f"unknown header key(s) {unknown}: give rate, format, channels ({takes})")
        if header.get("format", self.format) != self.format:
            raise AudioError(f"format {header['format']!r}: {takes}; convert on the client, or set ws_format = "
                             f"{header['format']!r} ({list(FORMATS)}) on the capture node")
        if header.get("rate", self.rate) != self.rate:
            raise AudioError(f"rate {header['rate']!r} Hz: {takes}; resample on the client (a browser: new "
                             f"AudioContext({{sampleRate: {self.rate}}}); ffmpeg: -ar {self.rate}), or set ws_rate = "
                             f"{header['rate']!r} on the capture node")
        if header.get("channels", 1) != 1:
            raise AudioError(f"channels {header['channels']!r}: {takes}; down-mix on the client (ffmpeg: -ac 1)")

    async def blocks(self) -> AsyncIterator[Block]:
        from websockets.asyncio.server import serve

        queue: asyncio.Queue[Block] = asyncio.Queue(self.queue_messages)
        handlers: set[asyncio.Task[Any]] = set()  # cancelled when the node stops: they may wait on a full queue
        stopping = False

        async def handler(ws: Any) -> None:
            peer = ":".join(str(p) for p in ws.remote_address[:2])
            if self.client is not None:
                await self._refuse(ws, 1013, f"stream {self.stream!r} already has a client ({self.client}); one "
                                   "at a time: close that one first")
                return
            task = asyncio.current_task()
            assert task is not None
            handlers.add(task)
            self.client = peer
            self.input.connected()
            log.info("WebSocket client %s connected to stream %r", peer, self.stream)
            why = "the client closed the connection"
            try:
                await ws.send(self.greeting())
                first = True
                while True:
                    try:
                        async with asyncio.timeout(self.input.hold_s()):  # not wait_for: see FfmpegSource.blocks
                            message = await ws.recv()
                    except TimeoutError:  # the start of the connection is due and nothing more came
                        for block in self.input.release():
                            await queue.put(block)
                        continue
                    except ConnectionClosed:
                        break
                    if isinstance(message, str):
                        if not first:
                            raise AudioError("a text frame after audio: the JSON header may only come first")
                        self.check_header(message)
                    else:
                        try:
                            blocks = self.input.push(message, time.monotonic_ns())
                        except AudioError as exc:
                            why = str(exc)
                            await self._refuse(ws, 1007, why)
                            return
                        for block in blocks:
                            await queue.put(block)
                    first = False
            except AudioError as exc:
                why = str(exc)
                await self._refuse(ws, 1003, why)
            finally:
                self.client = None
                handlers.discard(task)
                for block in self.input.disconnected(f"{peer}: {why}"):
                    if not stopping:
                        await queue.put(block)

        async with serve(handler, sock=self.sock, max_size=MAX_MESSAGE, compression=None):
            log.info("capture %r: WebSocket input on ws://%s:%d (%d Hz %s mono)", self.node, self.host, self.port,
                     self.rate, self.format)
            try:
                while True:
                    block = await queue.get()
                    await self.input.captured(block)
                    yield block
            finally:
                stopping = True
                for task in list(handlers):
                    task.cancel()
                await asyncio.gather(*handlers, return_exceptions=True)

    async def _refuse(self, ws: Any, code: int, reason: str) -> None:
        CAPTURE_PROBLEMS.labels(node=self.node, problem="rejected").inc()
        log.warning("WebSocket client refused on stream %r: %s", self.stream, reason)
        with contextlib.suppress(Exception):  # the client may be gone already
            await ws.send(json.dumps({"error": reason}))
            await ws.close(code, reason.encode()[:120].decode(errors="ignore"))


def _die_with_parent() -> None:
    """In the ffmpeg child before exec: SIGKILL it when the capture process dies, even by kill -9 (no orphans)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


class FfmpegSource:
    """A network stream decoded by an ffmpeg child process to mono float32 at the graph's rate (as Frigate reads
    a camera's audio). When the stream ends, fails or stalls for `STALL_S`, ffmpeg is started again after a
    back-off (0.5 s, doubling up to 8 s while starts fail). The child dies with the node (stop, crash, kill -9)."""

    channels = 1

    def __init__(self, url: str, rate: int, node: str = "capture") -> None:
        self.url = check_url(url)
        self.rate = check_rate(rate, "stream")
        self.node = node
        if shutil.which("ffmpeg") is None:
            raise AudioError('source "url" needs ffmpeg on PATH: install it (apt-get install ffmpeg)')
        self.input = LiveInput(self.rate, "f32le", node, f"stream {redact(url)}")
        self.starts = 0  # ffmpeg processes started

    def command(self) -> list[str]:
        transport = ["-rtsp_transport", "tcp"] if urlsplit(self.url).scheme in ("rtsp", "rtsps") else []
        return ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", *transport, "-i", self.url,
                "-vn", "-sn", "-dn", "-ac", "1", "-ar", str(self.rate), "-f", "f32le", "pipe:1"]

    async def blocks(self) -> AsyncIterator[Block]:
        wait_s = BACKOFF_S[0]
        while True:
            proc = await asyncio.create_subprocess_exec(
                *self.command(), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, preexec_fn=_die_with_parent)
            self.starts += 1
            assert proc.stdout is not None and proc.stderr is not None
            errors: deque[str] = deque(maxlen=3)
            stderr = asyncio.ensure_future(_lines(proc.stderr, errors))
            self.input.connected()
            try:
                while True:
                    hold_s = self.input.hold_s()
                    try:
                        # not wait_for: on Python 3.11 it can drop a cancel that lands as the read completes
                        # (gh-86296), and the node would read on for ever after being stopped
                        async with asyncio.timeout(min(hold_s or STALL_S, STALL_S)):
                            data = await proc.stdout.read(1 << 16)
                    except TimeoutError:
                        if hold_s is None:
                            why = f"no audio for {STALL_S:.0f} s"
                            break
                        for block in self.input.release():  # the start of the connection is due
                            await self.input.captured(block)
                            yield block
                        continue
                    if not data:
                        why = "the stream ended"
                        break
                    for block in self.input.push(data, time.monotonic_ns()):
                        await self.input.captured(block)
                        yield block
            finally:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.stdout.read()  # to its end: asyncio reports the exit only once the pipes are closed
                await stderr
                await proc.wait()
            for block in self.input.disconnected(f"{why}; ffmpeg: {' | '.join(errors)}" if errors else why):
                await self.input.captured(block)
                yield block
            if self.input.delivered:
                wait_s = BACKOFF_S[0]
            else:
                CAPTURE_PROBLEMS.labels(node=self.node, problem="connect_failed").inc()
                log.warning("%s: no audio (%s); trying again in %.1f s", self.input.what,
                            " | ".join(errors) or why, wait_s)
            await asyncio.sleep(wait_s)
            if not self.input.delivered:
                wait_s = min(2 * wait_s, BACKOFF_S[1])


async def _lines(stream: asyncio.StreamReader, keep: deque[str]) -> None:
    """Read a child's stderr to its end (a full pipe would block it), keeping the last lines for the log."""
    async for line in stream:
        if text := line.decode(errors="replace").strip():
            keep.append(text)
