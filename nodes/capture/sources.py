"""Block sources: a sound device, a file, a scene of files, or the generated test signal, as async iterators of stamped blocks.

Each source yields `Block(samples float32 [frames, channels], t_capture_ns)` at its own native rate and channel
count; `conform.Conformer` brings them to the graph's format. Stamps are on the `time.monotonic_ns()` clock:
a device stamps from block arrival times (`clock.ArrivalClock`), a file or the test signal from its start time
plus the sample offset, so a file played at real-time pace looks exactly like live audio downstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import soundfile as sf

from nodes.capture import testsignal
from nodes.capture.clock import ArrivalClock
from nodes.capture.conform import Block, check_finite, check_rate
from nodes.capture.files import read_blocks
from nodes.capture.probe import device_answers
from stream.errors import AudioError
from stream.metrics import CAPTURE_PROBLEMS
from stream.paths import data_dir

log = logging.getLogger(__name__)

NS = 1_000_000_000


class Source(Protocol):
    """What the capture node needs from a source: its native format and its blocks."""

    rate: int  # Hz, native
    channels: int  # native channel count

    def blocks(self) -> AsyncIterator[Block]: ...


def block_frames(rate: int, block_ms: float) -> int:
    """Frames in one block of `block_ms` milliseconds at `rate` Hz (at least one)."""
    return max(1, round(rate * block_ms / 1000))


@dataclass
class Timeline:
    """Where a paced source (file, test signal) is: its start on the monotonic clock and the frames it has
    delivered since (across loops). The capture node checkpoints it, so a restarted source resumes instead of
    starting over; at real-time pace it skips the downtime, as live audio would, and the gap shows in the stamps.
    """

    start_ns: int | None = None
    offset: int = 0  # frames delivered

    def begin(self, rate: int, realtime: bool) -> None:
        now = time.monotonic_ns()
        if self.start_ns is None:
            self.start_ns = now
        elif realtime:
            self.offset = max(self.offset, (now - self.start_ns) * rate // NS)

    async def advance(self, frames: int, rate: int, realtime: bool) -> int:
        """Count a block of `frames`, wait (at real-time pace) until its last sample is 'captured'; its stamp."""
        assert self.start_ns is not None, "call begin() first"
        t_ns = self.start_ns + self.offset * NS // rate
        self.offset += frames
        if realtime:
            delay = (self.start_ns + self.offset * NS // rate - time.monotonic_ns()) / NS
            await asyncio.sleep(max(delay, 0.0))
        else:
            await asyncio.sleep(0)  # as fast as possible, yet let the rest of the node run
        return t_ns


class FileSource:
    """Stream a sound file in blocks (never loading it whole), at real-time pace or as fast as possible.

    With `loop` the file restarts at its end and the stamps keep counting, so it is an endless live-like source.
    """

    def __init__(
        self, path: str | Path, block_ms: float = 20.0, realtime: bool = True, loop: bool = False,
        timeline: Timeline | None = None,
    ) -> None:
        self.path = Path(path)
        try:
            info = sf.info(str(self.path))
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise AudioError(
                f"cannot read audio file {self.path}: {exc}; give a WAV, FLAC or OGG file "
                "(convert others with `ffmpeg -i IN OUT.flac`)"
            ) from exc
        if info.frames == 0:
            raise AudioError(f"audio file {self.path} has no samples: give a file with audio in it")
        self.rate = check_rate(int(info.samplerate), f"file {self.path}")
        self.channels = int(info.channels)
        self.frames = int(info.frames)
        self.block_frames = block_frames(self.rate, block_ms)
        self.realtime = realtime
        self.loop = loop
        self.timeline = timeline or Timeline()

    async def blocks(self) -> AsyncIterator[Block]:
        self.timeline.begin(self.rate, self.realtime)
        if self.timeline.offset >= self.frames and not self.loop:
            return
        with sf.SoundFile(str(self.path)) as f:
            f.seek(self.timeline.offset % self.frames)
            while True:
                at_s = f.tell() / self.rate
                samples = f.read(self.block_frames, dtype="float32", always_2d=True)
                if len(samples) == 0:
                    if not self.loop:
                        return
                    f.seek(0)
                    continue
                check_finite(samples, f"audio file {self.path} at {at_s:.3f} s")
                yield Block(samples, await self.timeline.advance(len(samples), self.rate, self.realtime))


class SignalSource:
    """The generated test signal (`testsignal`): speech-like voices, chirps, noise, silences; mono, endless."""

    channels = 1

    def __init__(
        self, rate: int, block_ms: float = 20.0, realtime: bool = True, timeline: Timeline | None = None
    ) -> None:
        self.rate = check_rate(rate, "test signal")
        self.block_frames = block_frames(rate, block_ms)
        self.realtime = realtime
        self.timeline = timeline or Timeline()

    async def blocks(self) -> AsyncIterator[Block]:
        self.timeline.begin(self.rate, self.realtime)
        while True:
            samples = testsignal.generate(self.rate, self.timeline.offset, self.block_frames)
            yield Block(samples, await self.timeline.advance(self.block_frames, self.rate, self.realtime))


class SceneSource:
    """Several sound files played one after another as one stream (the demo scene: a meeting, an alarm, music),
    mono at the graph's `rate`, paced like `FileSource`. Relative paths are under `STREAM_DATA_DIR`."""

    channels = 1

    def __init__(self, paths: tuple[str, ...], rate: int, block_ms: float = 20.0, realtime: bool = True,
                 timeline: Timeline | None = None) -> None:
        self.paths = [scene_path(p) for p in paths]
        self.durations = []
        for path in self.paths:
            try:
                self.durations.append(sf.info(str(path)).duration)
            except (sf.LibsndfileError, RuntimeError, OSError) as exc:
                raise AudioError(f"scene part {path}: cannot read it ({exc}); relative parts are under "
                                 f"STREAM_DATA_DIR ({data_dir()}): set it to the shared data folder") from None
        self.rate = check_rate(rate, "scene")
        self.block_frames = block_frames(rate, block_ms)
        self.realtime = realtime
        self.timeline = timeline or Timeline()

    def parts(self) -> list[tuple[float, float, Path]]:
        """(start s, end s, file) of each part on the stream's time line."""
        starts = np.cumsum([0.0, *self.durations])
        return [(float(a), float(b), p) for a, b, p in zip(starts, starts[1:], self.paths)]

    async def blocks(self) -> AsyncIterator[Block]:
        self.timeline.begin(self.rate, self.realtime)
        skip = self.timeline.offset  # a restarted capture resumes where the scene was
        for path in self.paths:
            for chunk in read_blocks(path, self.rate):
                for first in range(0, len(chunk), self.block_frames):
                    samples = chunk[first:first + self.block_frames]
                    if skip >= len(samples):
                        skip -= len(samples)
                        continue
                    samples, skip = samples[skip:], 0
                    yield Block(samples[:, None], await self.timeline.advance(len(samples), self.rate, self.realtime))


def scene_path(part: str) -> Path:
    """A scene part: absolute, or relative to STREAM_DATA_DIR."""
    return Path(part) if Path(part).is_absolute() else data_dir() / part


def find_input_device(device: str | int | None) -> dict[str, Any]:
    """PortAudio's description of an input device by index, name (or unique part of it), or the default.

    `pulse:<source>` is the sound server's source of that name (`stream devices` lists them): PortAudio's "pulse"
    device with PULSE_SOURCE set, which the PulseAudio client library reads when the stream opens.
    """
    if isinstance(device, str) and device.startswith("pulse:"):
        os.environ["PULSE_SOURCE"], device = device.removeprefix("pulse:"), "pulse"
    import sounddevice as sd  # PortAudio enumerates devices when imported: import only where needed

    try:
        info = sd.query_devices(device, kind="input")
    except (ValueError, sd.PortAudioError) as exc:
        raise AudioError(
            f"no input device {device!r}: {exc}; run `stream devices` to list them and give an index or name"
        ) from exc
    if info["max_input_channels"] < 1:
        raise AudioError(f"device {device!r} ({info['name']}) has no input channels: pick one from `stream devices`")
    return dict(info)


class DeviceSource:
    """Live input through PortAudio (sounddevice) at the device's default rate.

    The PortAudio callback thread stamps each block (`clock.ArrivalClock`) and hands it to the event loop's
    queue. Overflows (the device dropped samples), blocks dropped because the node fell more than `queue_s`
    behind, and blocks with NaN/inf samples (replaced by silence: a live input must not stop over one bad
    block) are counted in `stream_capture_problems_total{node,problem}`, never hidden.

    A device that delivers nothing for `stall_s` (a USB microphone unplugged, a PulseAudio source removed: PortAudio
    then stops calling back, silently) is closed, and opened again once a probe (`probe.device_answers`, every
    second) hears it deliver (counted as problem="stalled"). Stamps stay arrival times, so the outage is a gap in capture time, never invented audio.
    """

    def __init__(self, device: str | int | None, channels: int = 1, block_ms: float = 20.0, queue_s: float = 2.0,
                 node: str = "capture", stall_s: float = 3.0):
        self.info = find_input_device(device)
        self.device = self.info["index"]
        self.rate = check_rate(int(self.info["default_samplerate"]), f"device {self.info['name']}")
        self.channels = min(channels, int(self.info["max_input_channels"]))
        self.block_frames = block_frames(self.rate, block_ms)
        self.queue_blocks = max(1, round(queue_s * 1000 / block_ms))
        self.node = node
        self.stall_s = stall_s
        self.overflows = 0  # callbacks that reported an input overflow
        self.dropped = 0  # blocks dropped because the consumer fell behind
        self.nonfinite = 0  # blocks with NaN/inf samples, passed on as silence
        self.stalls = 0  # times the device went silent and was reopened

    async def blocks(self) -> AsyncIterator[Block]:
        queue: asyncio.Queue[Block] = asyncio.Queue(self.queue_blocks)
        arrived = [time.monotonic_ns()]  # the last callback's time, set on PortAudio's thread
        stream = self._open(queue, arrived)
        while True:
            with stream:
                log.info("capturing from %r at %d Hz, %d channel(s)", self.info["name"], self.rate, self.channels)
                async for block in self._until_stalled(queue, arrived):
                    yield self._finite(block)
                with contextlib.suppress(Exception):  # PortAudio may fail to stop a stream whose device is gone
                    stream.abort()
            self.stalls += 1
            CAPTURE_PROBLEMS.labels(node=self.node, problem="stalled").inc()
            log.warning("input device %r delivered nothing for %.1f s (unplugged or removed?); opening it again "
                        "once it answers", self.info["name"], self.stall_s)
            while not await device_answers(self.info["name"], self.rate, self.channels):
                await asyncio.sleep(1.0)
            arrived[0] = time.monotonic_ns()
            stream = self._open(queue, arrived)
            log.warning("input device %r is back", self.info["name"])

    async def _until_stalled(self, queue: asyncio.Queue[Block], arrived: list[int]) -> AsyncIterator[Block]:
        """Blocks as they come, until PortAudio has not called back for `stall_s` (judged by the callback's own
        clock: an event loop starved of CPU is not a stalled device)."""
        while True:
            try:
                async with asyncio.timeout(self.stall_s):  # not wait_for: on Python 3.11 it can drop a cancel that
                    block = await queue.get()  # lands as the call completes (gh-86296): the node would not stop
            except TimeoutError:
                if queue.empty() and time.monotonic_ns() - arrived[0] > self.stall_s * NS:
                    return
                continue
            yield block

    def _open(self, queue: asyncio.Queue[Block], arrived: list[int]) -> Any:
        """A started-on-enter PortAudio input stream feeding `queue` (a fresh arrival clock per stream)."""
        import sounddevice as sd

        loop = asyncio.get_running_loop()

        def put(block: Block) -> None:  # on the loop thread: drop the oldest rather than block PortAudio
            if queue.full():
                queue.get_nowait()
                self.dropped += 1
                CAPTURE_PROBLEMS.labels(node=self.node, problem="dropped").inc()
            queue.put_nowait(block)

        clock = ArrivalClock(self.rate)

        def callback(indata: np.ndarray, frames: int, time_info: Any, status: sd.CallbackFlags) -> None:
            arrival_ns = arrived[0] = time.monotonic_ns()
            if status.input_overflow:
                self.overflows += 1
                CAPTURE_PROBLEMS.labels(node=self.node, problem="overflow").inc()
                clock.reset()
            loop.call_soon_threadsafe(put, Block(indata.copy(), clock.stamp(frames, arrival_ns)))

        try:
            return sd.InputStream(device=self.device, samplerate=self.rate, channels=self.channels, dtype="float32",
                                  blocksize=self.block_frames, latency="low", callback=callback)
        except sd.PortAudioError as exc:
            raise AudioError(
                f"cannot open input device {self.info['name']!r} at {self.rate} Hz with {self.channels} channel(s): "
                f"{exc}; check it is not in use and pick another with `stream devices`"
            ) from exc

    def _finite(self, block: Block) -> Block:
        if np.isfinite(block.samples).all():
            return block
        if not self.nonfinite:
            log.warning("input device %r delivered NaN/inf samples: replaced by silence, counted in "
                        "stream_capture_problems_total", self.info["name"])
        self.nonfinite += 1
        CAPTURE_PROBLEMS.labels(node=self.node, problem="nonfinite").inc()
        return Block(np.nan_to_num(block.samples, nan=0.0, posinf=0.0, neginf=0.0), block.t_capture_ns)
