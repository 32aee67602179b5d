"""Capture sources without a sound server: resampling accuracy, file pacing and stamps, the test signal, bad input."""

from __future__ import annotations

import time

import numpy as np
import pytest
import soundfile as sf

from nodes.capture import testsignal
from nodes.capture.conform import Block, Conformer, mix
from nodes.capture.node import CaptureNode
from nodes.capture.sources import FileSource, SignalSource, find_input_device
from stream.errors import AudioError, ConfigError

NS = 1_000_000_000


def _sine_file(path, rate: int, seconds: float, freq: float, amp: float, channels: int = 2) -> None:
    t = np.arange(round(rate * seconds)) / rate
    x = amp * np.sin(2 * np.pi * freq * t)
    sf.write(str(path), np.repeat(x[:, None], channels, axis=1), rate, subtype="FLOAT")


async def _collect(node: CaptureNode) -> list:
    await node.setup()
    return [m async for m in node.produce()]


async def test_44k1_stereo_file_becomes_16k_mono_sine_continuous_across_blocks(tmp_path):
    """440 Hz at 0.5 in 44.1 kHz stereo -> 16 kHz mono 20 ms blocks: within 1e-4 of the ideal sine everywhere
    past the first 10 ms (so no seam at any of the 149 block boundaries), same amplitude, same frequency."""
    _sine_file(tmp_path / "sine.wav", 44_100, 3.0, 440.0, 0.5)
    node = CaptureNode.from_table({"source": "file", "path": str(tmp_path / "sine.wav"), "realtime": False}, "cap")
    msgs = await _collect(node)
    assert [m.header.shape for m in msgs] == [(320, 1)] * 150
    assert {m.header.sr for m in msgs} == {16_000}
    y = np.concatenate([m.data[:, 0] for m in msgs])
    ideal = 0.5 * np.sin(2 * np.pi * 440.0 * np.arange(len(y)) / 16_000)
    assert np.abs(y - ideal)[160:-160].max() < 1e-4
    assert np.sqrt(np.mean(y[160:-160] ** 2)) * np.sqrt(2) == pytest.approx(0.5, abs=1e-3)
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y)), n=16 * len(y)))
    assert np.argmax(spectrum) * 16_000 / (16 * len(y)) == pytest.approx(440.0, abs=0.5)
    t0 = msgs[0].header.t_capture_ns
    assert [m.header.t_capture_ns - t0 for m in msgs] == [k * 20_000_000 for k in range(150)]


def test_conformer_stamps_follow_source_gaps():
    """A 100 ms hole in the source's stamps shows in the output stamps (to the ns), instead of being smoothed."""
    conf = Conformer(48_000, 16_000, 1, 160)
    out = conf.push(Block(np.zeros((4800, 1), np.float32), 1_000_000_000))
    out += conf.push(Block(np.zeros((4800, 1), np.float32), 1_200_000_000))  # 100 ms late
    out += conf.flush()
    stamps = np.array([b.t_capture_ns for b in out]) - 1_000_000_000
    assert len(out) == 20
    assert list(stamps[:10]) == [k * 10_000_000 for k in range(10)]
    assert list(stamps[10:]) == [200_000_000 + k * 10_000_000 for k in range(10)]


def test_mix_down_and_up():
    stereo = np.array([[1.0, 0.0], [0.5, 0.5]], np.float32)
    assert mix(stereo, 1)[:, 0].tolist() == [0.5, 0.5]
    assert mix(stereo[:, :1], 2).tolist() == [[1.0, 1.0], [0.5, 0.5]]
    assert mix(np.ones((3, 6), np.float32), 2).shape == (3, 2)


async def test_file_at_realtime_pace_takes_its_duration_and_no_block_comes_early(tmp_path):
    """1.0 s of audio in 20 ms blocks arrives over 1.0 s (+<100 ms), each block once its last sample is 'captured'."""
    _sine_file(tmp_path / "a.wav", 16_000, 1.0, 200.0, 0.1, channels=1)
    src = FileSource(tmp_path / "a.wav", block_ms=20.0, realtime=True)
    start = time.monotonic_ns()
    early = []
    count = 0
    async for block in src.blocks():
        count += 1
        early.append(block.t_capture_ns + len(block.samples) * NS // 16_000 - time.monotonic_ns())
    elapsed = (time.monotonic_ns() - start) / NS
    assert count == 50
    assert 1.0 <= elapsed < 1.1
    assert max(early) <= 0


async def test_file_as_fast_as_possible_and_loop(tmp_path):
    """realtime=False: 10 s of audio in well under a second; loop=True keeps the stamps counting past the end."""
    _sine_file(tmp_path / "b.wav", 16_000, 10.0, 200.0, 0.1, channels=1)
    start = time.monotonic()
    n = sum([1 async for _ in FileSource(tmp_path / "b.wav", block_ms=100.0, realtime=False).blocks()])
    assert n == 100 and time.monotonic() - start < 1.0
    looped = FileSource(tmp_path / "b.wav", block_ms=1000.0, realtime=False, loop=True).blocks()
    stamps = [(await anext(looped)).t_capture_ns for _ in range(25)]
    await looped.aclose()
    assert np.diff(stamps).tolist() == [NS] * 24


async def test_signal_source_is_continuous_and_has_voices_and_silences():
    """The demo signal: 20 ms blocks join bit-exactly; voiced parts are loud (RMS > 0.05), gaps are silent."""
    blocks = SignalSource(16_000, block_ms=20.0, realtime=False).blocks()
    y = np.concatenate([(await anext(blocks)).samples[:, 0] for _ in range(300)])  # one 6 s period
    await blocks.aclose()
    assert np.array_equal(y, testsignal.generate(16_000, 0, 96_000)[:, 0])
    rms = lambda a, b: float(np.sqrt(np.mean(y[int(a * 16_000) : int(b * 16_000)] ** 2)))  # noqa: E731
    assert rms(0.2, 1.0) > 0.05 and rms(4.0, 5.0) > 0.05 and rms(1.7, 2.3) > 0.1
    assert rms(1.25, 1.55) == 0.0 and rms(5.25, 5.95) == 0.0


async def test_bad_input_raises_audio_error_saying_what_to_do(tmp_path):
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(AudioError, match="cannot read audio file .*ffmpeg"):
        FileSource(tmp_path / "text.wav")
    with pytest.raises(AudioError, match="cannot read audio file"):
        FileSource(tmp_path / "missing.flac")
    sf.write(str(tmp_path / "empty.wav"), np.zeros((0, 1), np.float32), 16_000)
    with pytest.raises(AudioError, match="no samples"):
        FileSource(tmp_path / "empty.wav")
    sf.write(str(tmp_path / "low.wav"), np.zeros((100, 1), np.float32), 4_000)
    with pytest.raises(AudioError, match="4000 is not supported.*8000"):
        FileSource(tmp_path / "low.wav")
    nan = np.zeros((16_000, 1), np.float32)
    nan[12_345] = np.nan
    sf.write(str(tmp_path / "nan.wav"), nan, 16_000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or infinite samples"):
        [b async for b in FileSource(tmp_path / "nan.wav", realtime=False).blocks()]
    with pytest.raises(AudioError, match="stream devices"):
        find_input_device("no-such-device-xyz")
    with pytest.raises(AudioError, match="graph sample rate 44100.5"):
        Conformer(16_000, 44100.5, 1, 160)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"rate must be in \[8000, 192000\] Hz, got 4000"):
        CaptureNode.from_table({"rate": 4000}, "cap")
    with pytest.raises(ConfigError, match="channels must be 1"):
        CaptureNode.from_table({"channels": 3}, "cap")
    with pytest.raises(ConfigError, match='needs path'):
        CaptureNode.from_table({"source": "file"}, "cap")


async def test_restarted_capture_resumes_the_file_where_its_checkpoint_was(tmp_path):
    """As fast as possible: a new node loaded with the state after block 40 sends block 41 next (same samples,
    same stamp, same position: its seq). At real-time pace: after 300 ms down, it resumes 300 ms (+<50 ms) on, and
    the stamps and positions show it."""
    _sine_file(tmp_path / "c.wav", 16_000, 3.0, 300.0, 0.2, channels=1)
    table = {"source": "file", "path": str(tmp_path / "c.wav"), "realtime": False}
    whole = await _collect(CaptureNode.from_table(table, "cap"))
    first = CaptureNode.from_table(table, "cap")
    await first.setup()
    messages = first.produce()
    for _ in range(40):
        await anext(messages)
    state = first.state_dict()
    await messages.aclose()
    second = CaptureNode.from_table(table, "cap")
    second.load_state_dict(state)
    resumed = await _collect(second)
    t0 = state["start_ns"]
    assert [m.header.t_capture_ns - t0 for m in resumed] == [m.header.t_capture_ns - whole[0].header.t_capture_ns
                                                             for m in whole[40:]]
    assert all(np.array_equal(a.data, b.data) for a, b in zip(resumed, whole[40:]))
    assert [second.position(m) for m in resumed[:3]] == [40, 41, 42]  # its seq goes on: re-sent blocks are known

    live = CaptureNode.from_table({**table, "realtime": True}, "cap")
    await live.setup()
    messages = live.produce()
    stamps = [(await anext(messages)).header.t_capture_ns for _ in range(5)]
    state = live.state_dict()
    down = time.monotonic()
    await messages.aclose()
    time.sleep(0.3)  # the node is down
    again = CaptureNode.from_table({**table, "realtime": True}, "cap")
    again.load_state_dict(state)
    await again.setup()
    messages = again.produce()
    resumed = await anext(messages)
    gap_ms = (resumed.header.t_capture_ns - stamps[-1]) / 1e6
    down_ms = (time.monotonic() - down) * 1e3  # 300 ms and the restart (more on a loaded machine)
    await messages.aclose()
    assert 20 + 300 <= gap_ms < 20 + down_ms + 50
    assert again.position(resumed) == 4 + round(gap_ms / 20)  # the skipped blocks are a gap of seq downstream


async def test_scene_plays_its_parts_in_order_at_the_graph_rate_and_resumes(tmp_path):
    """The demo's source: a 16 kHz mono part then a 44.1 kHz stereo part, one stream at 16 kHz; parts() tells
    when each plays; a restarted scene (its Timeline) skips what was already played."""
    from nodes.capture.sources import SceneSource, Timeline

    sf.write(tmp_path / "a.wav", np.full(16000, 0.25, np.float32), 16000)
    sf.write(tmp_path / "b.flac", np.full((22050, 2), -0.5, np.float32), 44100)
    scene = SceneSource((str(tmp_path / "a.wav"), str(tmp_path / "b.flac")), 16000, realtime=False)
    assert [(a, b) for a, b, _ in scene.parts()] == [(0.0, 1.0), (1.0, 1.5)]
    blocks = [b async for b in scene.blocks()]
    audio = np.concatenate([b.samples[:, 0] for b in blocks])
    assert len(audio) == 24000 and all(len(b.samples) == 320 for b in blocks)
    assert np.allclose(audio[100:15900], 0.25) and np.allclose(audio[16100:23900], -0.5, atol=1e-3)
    stamps = np.diff([b.t_capture_ns for b in blocks])
    assert np.all(stamps == 20_000_000)  # 20 ms blocks, sample-exact stamps across the part boundary
    resumed = SceneSource((str(tmp_path / "a.wav"), str(tmp_path / "b.flac")), 16000,
                          realtime=False, timeline=Timeline(blocks[0].t_capture_ns, 20000))
    rest = np.concatenate([b.samples[:, 0] async for b in resumed.blocks()])
    assert len(rest) == 4000 and np.allclose(rest[100:3900], -0.5, atol=1e-3)
    with pytest.raises(AudioError, match="STREAM_DATA_DIR"):
        SceneSource(("no/such/part.flac",), 16000)
