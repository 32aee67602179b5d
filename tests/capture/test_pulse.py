"""Acceptance: a known signal played into a PulseAudio null sink comes back through sounddevice, from the sink's
monitor, in the capture node (its own process, as in a graph): same waveform (correlation > 0.95, measured
0.993-0.9997), two parts 1 s apart in the file stamped 1 s apart (+-2 ms), and stamped when it was played
(measured 3-14 ms before paplay started on an idle machine, i.e. the stamps run that much early through
PulseAudio's buffering; 250 ms after under load, paplay's start-up; bound: 30 ms early to 500 ms late).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

RATE = 16_000
NS = 1_000_000_000
RECORD = Path(__file__).with_name("record.py")


def _wait_for(check, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def pulse(tmp_path_factory) -> Iterator[dict[str, str]]:
    """A private PulseAudio server (as root: own XDG_RUNTIME_DIR, mode 700) with a null sink "test"; its env."""
    runtime = tmp_path_factory.mktemp("xdg")
    runtime.chmod(0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "PULSE_SOURCE": "test.monitor", "PULSE_SINK": "test"}
    subprocess.run(
        ["pulseaudio", "-D", "--exit-idle-time=-1", "-n", "--load=module-native-protocol-unix",
         "--load=module-null-sink sink_name=test"],
        env=env, check=True, capture_output=True, timeout=30,
    )
    pid_file = runtime / "pulse" / "pid"
    try:
        _wait_for(lambda: subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0, 10,
                  "pulseaudio to answer")
        yield env
    finally:
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, signal.SIGTERM)
        _wait_for(lambda: not Path(f"/proc/{pid}").exists(), 10, f"pulseaudio {pid} to exit")


CHIRP_S, TONES_S = 0.2, 1.2  # where the probe's two parts start, s


def _probe() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(probe, chirp, tones): 0.2 s silence, a 0.8 s 200 -> 1200 Hz chirp, 0.2 s silence, 0.6 s of two tones,
    0.2 s silence; all below 1.3 kHz so sub-sample shifts cost no correlation."""
    t = np.arange(int(0.8 * RATE)) / RATE
    chirp = 0.4 * np.sin(2 * np.pi * (200 * t + (1200 - 200) / (2 * 0.8) * t**2))
    t2 = np.arange(int(0.6 * RATE)) / RATE
    tones = 0.24 * np.sin(2 * np.pi * 330 * t2) + 0.16 * np.sin(2 * np.pi * 770 * t2)
    gap = np.zeros(int(0.2 * RATE))
    return np.concatenate([gap, chirp, gap, tones, gap]).astype(np.float32), chirp, tones


def _find(y: np.ndarray, part: np.ndarray) -> int:
    """Sample index in `y` where `part` fits best (cross-correlation peak)."""
    return int(np.argmax(np.correlate(y, part, mode="valid")))


def test_null_sink_monitor_round_trip(pulse, tmp_path):
    played, chirp, tones = _probe()
    sf.write(str(tmp_path / "probe.wav"), played, RATE, subtype="FLOAT")
    recorder = subprocess.Popen(
        [sys.executable, str(RECORD), "pulse", "3.5", str(tmp_path / "got.npz")],
        env=pulse, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert recorder.stdout.readline().strip() == "capturing", recorder.stderr.read()
        t_play = time.monotonic_ns()
        subprocess.run(["paplay", "--device=test", str(tmp_path / "probe.wav")], env=pulse, check=True, timeout=10)
        _, err = recorder.communicate(timeout=15)
    finally:
        recorder.kill()
    assert recorder.returncode == 0, err
    got = np.load(tmp_path / "got.npz")
    y, stamps, block = got["samples"], got["stamps"], int(got["block"])
    assert (int(got["overflows"]), int(got["dropped"])) == (0, 0)

    def stamp(i: int) -> int:  # capture ns of sample i, from the stamp of the block it fell in
        return int(stamps[i // block]) + (i % block) * NS // RATE

    start = _find(y, chirp) - int(CHIRP_S * RATE)
    seg = y[start : start + len(played)]
    assert float(np.dot(seg, played) / (np.linalg.norm(seg) * np.linalg.norm(played))) > 0.95
    # The two parts are 1.000 s apart in the file: their capture stamps must be too (no lost or extra samples,
    # stamps sample-exact), and the probe must not be stamped before paplay started (nor long after).
    gap_s = (stamp(_find(y, tones)) - stamp(_find(y, chirp))) / NS
    assert abs(gap_s - (TONES_S - CHIRP_S)) < 0.002, f"parts {gap_s:.4f} s apart"
    delay_s = (stamp(start) - t_play) / NS
    assert -0.03 <= delay_s < 0.5, f"probe stamped {delay_s * 1000:.1f} ms after paplay started"


def test_stream_devices_lists_the_pulse_device(pulse):
    """`stream devices` in a process that sees the server: the ALSA "pulse" device, with inputs, at 44.1 kHz, and the
    server's sources by name."""
    out = subprocess.run([sys.executable, "-m", "stream.cli", "devices"], env=pulse, capture_output=True, text=True,
                         timeout=30, check=True).stdout
    lines = out.splitlines()
    rows = [line.split() for line in lines[1:lines.index("* default input")]]
    pulse_row = next(row for row in rows if row[1] == "pulse")
    assert int(pulse_row[2]) >= 1 and int(pulse_row[3]) == 44_100
    assert "  test.monitor" in lines  # the server's sources by name (issue #21), to give as --source pulse:<name>
