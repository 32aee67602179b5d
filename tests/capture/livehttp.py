"""A local HTTP audio server for the network-source tests: a WAV stream (16-bit mono, no length: HTTP/1.0 until
the connection closes) written at real-time pace, as a camera or a web radio serves it.

Two kinds of programme:
- live (`recording=None`): a signal that runs on the server's clock whether anyone listens or not; a listener
  gets it from the moment it connects. Sample i is `coded(i)`, a value that gives back i (mod 2^16) through
  `index_of`, and it exists from `epoch_ns + i / rate` (monotonic clock): a test can tell which sample it got
  and when that sample was 'captured'.
- a recording: every connection plays it from its start to its end, then the server closes the connection.

`stop()` closes the listening socket and cuts every connection (a crashed camera); `start()` serves again on
the same port.
"""

from __future__ import annotations

import asyncio
import struct
import time

import numpy as np

CODE = 7919  # odd, so i -> i * CODE is a bijection mod 2^16
CHUNK_S = 0.02  # s of audio per write


def coded(first: int, count: int) -> np.ndarray:
    """Samples first..first+count-1 of the live signal, int16 (noise-like: every value once per 2^16 samples)."""
    i = np.arange(first, first + count, dtype=np.int64)
    return ((i * CODE) % 65536 - 32768).astype(np.int16)


def index_of(samples: np.ndarray) -> np.ndarray:
    """Indices mod 2^16 of float samples of the live signal (as ffmpeg decodes int16: v / 32768)."""
    values = np.round(np.asarray(samples, np.float64) * 32768).astype(np.int64) + 32768
    return (values * pow(CODE, -1, 65536)) % 65536


def wav_header(rate: int) -> bytes:
    """A RIFF/WAVE header for 16-bit mono PCM whose length is unknown (sizes at their maximum, as streams do)."""
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVEfmt " + struct.pack("<I", 16) + fmt + b"data" \
        + struct.pack("<I", 0xFFFFFFFF)


class PacedWavServer:
    def __init__(self, rate: int = 16_000, recording: np.ndarray | None = None, port: int = 0) -> None:
        self.rate = rate
        self.recording = recording  # int16 mono, or None for the live signal
        self.port = port
        self.epoch_ns = time.monotonic_ns()  # when live sample 0 was 'captured'
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/audio.wav"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()
        await asyncio.sleep(2 * CHUNK_S)  # the connections' tasks see it and end

    def _now_index(self) -> int:
        return (time.monotonic_ns() - self.epoch_ns) * self.rate // 1_000_000_000

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self.connections += 1
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: audio/wav\r\n\r\n" + wav_header(self.rate))
            start_ns = time.monotonic_ns()
            sent = self._now_index() if self.recording is None else 0
            first = sent
            while (self.recording is None or sent < len(self.recording)) and not writer.is_closing():
                if self.recording is None:
                    upto = self._now_index()
                    chunk = coded(sent, upto - sent)
                else:
                    upto = min(len(self.recording), first + (time.monotonic_ns() - start_ns) * self.rate // 10**9)
                    chunk = self.recording[sent:upto]
                writer.write(chunk.astype("<i2").tobytes())
                await writer.drain()
                sent = upto
                await asyncio.sleep(CHUNK_S)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
