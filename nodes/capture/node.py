"""Capture node: audio from a device, a file, a scene (files one after another: the demo), the test signal, a
WebSocket client or a network stream (through ffmpeg), as fixed-size stamped `pcm` messages.

Output: kind "pcm", data float32 [block frames, channels] at `rate` Hz, `t_capture_ns` = monotonic capture
time of the block's first sample. The last block of a file is zero-padded to full size; its
`meta["valid_frames"]` says how many frames are real.

    [[nodes]]
    name = "capture"
    kind = "capture"
    [nodes.config]
    source = "device"   # "device" | "file" | "scene" | "signal" | "websocket" | "url"
    device = "pulse"    # index or (part of a) name from `stream devices`; omit for the default input
    rate = 16000
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from nodes.capture.conform import MAX_RATE, MIN_RATE, Block, Conformer
from nodes.capture.network import FfmpegSource, WebSocketSource, check_url, parse_listen
from nodes.capture.sources import (
    NS,
    DeviceSource,
    FileSource,
    SceneSource,
    SignalSource,
    Source,
    Timeline,
    block_frames,
)
from stream.errors import ConfigError
from stream.message import NAME_RULE, Message, valid_name
from stream.node import Source as SourceNode


@dataclass(frozen=True)
class CaptureConfig:
    source: Literal["device", "file", "scene", "signal", "websocket", "url"] = "signal"
    device: int | str | None = None  # source "device": index or name part; None = the default input
    path: str = ""  # source "file": WAV/FLAC/OGG at any rate and channel count
    scene: tuple[str, ...] = ()  # source "scene": files played one after another (relative: under STREAM_DATA_DIR)
    listen: str = "127.0.0.1:7007"  # source "websocket": HOST:PORT of the server (loopback unless you open it)
    ws_rate: int = 16_000  # source "websocket": Hz of the PCM clients send (resampled to `rate` here)
    ws_format: Literal["f32le", "s16le"] = "f32le"  # source "websocket": little-endian float32 [-1, 1] or int16
    url: str = ""  # source "url": a stream ffmpeg reads (rtsp://, http(s)://, rtmp://, srt://, udp://, tcp://)
    rate: int = 16_000  # Hz, the graph's sample rate [8000, 192000]
    channels: int = 1  # 1 = mono (down-mixed), 2 = stereo
    block_ms: float = 20.0  # ms per block, (0, 1000]
    realtime: bool = True  # file/signal: pace like live audio; False = as fast as the graph consumes
    loop: bool = False  # file: start again at the end (an endless live-like source)
    stream: str = "mic0"  # stream id in every header

    def __post_init__(self) -> None:
        if not MIN_RATE <= self.rate <= MAX_RATE:
            raise ConfigError(f"capture rate must be in [{MIN_RATE}, {MAX_RATE}] Hz, got {self.rate}")
        if self.channels not in (1, 2):
            raise ConfigError(f"capture channels must be 1 (mono) or 2 (stereo), got {self.channels}")
        if not 0 < self.block_ms <= 1000:
            raise ConfigError(f"capture block_ms must be in (0, 1000] ms, got {self.block_ms}")
        if not valid_name(self.stream):
            raise ConfigError(f"capture stream {self.stream!r} must be {NAME_RULE}")
        if self.source == "file" and not self.path:
            raise ConfigError('capture source "file" needs path = "some.wav"')
        if self.source == "scene" and not self.scene:
            raise ConfigError('capture source "scene" needs scene = ["first.flac", "second.wav", ...]')
        if self.source == "websocket":
            parse_listen(self.listen)
            if not MIN_RATE <= self.ws_rate <= MAX_RATE:
                raise ConfigError(f"capture ws_rate must be in [{MIN_RATE}, {MAX_RATE}] Hz, got {self.ws_rate}")
        if self.source == "url":
            check_url(self.url)


class CaptureNode(SourceNode[CaptureConfig]):
    """State: where a file or the test signal is (`Timeline`), so a restarted capture resumes the stream with
    its stamps; at real-time pace the downtime is skipped, as live audio would be. A device or a network source
    has no state: its stamps come from arrival times, so its downtime is a gap too."""

    Config = CaptureConfig

    def __init__(self, config: CaptureConfig | None = None, name: str | None = None) -> None:
        super().__init__(config, name)
        self.timeline = Timeline()

    def open_source(self) -> Source:
        """The configured block source; errors (no file, no device) surface here, before `ready`."""
        c = self.config
        if c.source == "device":
            return DeviceSource(c.device, channels=c.channels, block_ms=c.block_ms, node=self.name)
        if c.source == "file":
            return FileSource(c.path, block_ms=c.block_ms, realtime=c.realtime, loop=c.loop, timeline=self.timeline)
        if c.source == "websocket":
            return WebSocketSource(c.listen, c.ws_rate, c.ws_format, c.stream, node=self.name)
        if c.source == "url":
            return FfmpegSource(c.url, c.rate, node=self.name)
        if c.source == "scene":
            return SceneSource(c.scene, c.rate, block_ms=c.block_ms, realtime=c.realtime, timeline=self.timeline)
        return SignalSource(c.rate, block_ms=c.block_ms, realtime=c.realtime, timeline=self.timeline)

    def state_dict(self) -> dict[str, int]:
        if self.timeline.start_ns is None:
            return {}
        return {"start_ns": self.timeline.start_ns, "offset": self.timeline.offset}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.timeline = Timeline(state.get("start_ns"), state.get("offset", 0))

    async def setup(self) -> None:
        self.source = self.open_source()
        self.frames = block_frames(self.config.rate, self.config.block_ms)

    async def produce(self) -> AsyncIterator[Message]:
        c = self.config
        conformer = Conformer(self.source.rate, c.rate, c.channels, self.frames)
        wall_minus_mono = time.time() - time.monotonic_ns() / 1e9  # one offset: stamps stay exactly spaced
        async with contextlib.aclosing(self.source.blocks()) as blocks:  # a device closes when the node stops
            async for block in blocks:
                for out in conformer.push(block):
                    yield self._message(out, wall_minus_mono)
        for out in conformer.flush():
            valid = len(out.samples)
            if valid == self.frames:
                yield self._message(out, wall_minus_mono)
                continue
            padded = np.zeros((self.frames, c.channels), np.float32)
            padded[:valid] = out.samples
            yield self._message(Block(padded, out.t_capture_ns), wall_minus_mono, {"valid_frames": valid})

    def position(self, msg: Message) -> int | None:
        """A paced source's block index on its timeline (a restart resumes or skips by its checkpoint); None for a
        device or network source (stamps from arrival: its output after a restart is new)."""
        if self.timeline.start_ns is None:
            return None
        return round((msg.header.t_capture_ns - self.timeline.start_ns) * self.config.rate / (NS * self.frames))

    def _message(self, block: Block, wall_minus_mono: float, meta: dict | None = None) -> Message:
        return Message.new(
            self.config.stream, "pcm", block.samples, sr=self.config.rate, t_capture_ns=block.t_capture_ns,
            t_wall=block.t_capture_ns / 1e9 + wall_minus_mono, meta=meta,
        )


NODE = CaptureNode
