"""Acceptance: a known signal played into a PulseAudio null sink comes back through sounddevice, from the sink's
monitor, in the capture node (its own process, as in a graph): same waveform (correlation > 0.95, measured
0.993-0.9997) and stamped at the moment it was played (measured 3-14 ms before paplay's start, i.e. the stamps
run that much early through PulseAudio's buffering; bound: 30 ms early to 150 ms late).
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


def _probe() -> np.ndarray:
    """0.2 s silence, a 0.8 s 200 -> 1200 Hz chirp, 0.2 s silence, 0.6 s of two tones; then 0.2 s silence."""
    t = np.arange(int(0.8 * RATE)) / RATE
    chirp = np.sin(2 * np.pi * (200 * t + (1200 - 200) / (2 * 0.8) * t**2))
    t2 = np.arange(int(0.6 * RATE)) / RATE
    tones = 0.6 * np.sin(2 * np.pi * 330 * t2) + 0.4 * np.sin(2 * np.pi * 770 * t2)
    gap = np.zeros(int(0.2 * RATE))
    return (0.4 * np.concatenate([gap, chirp, gap, tones, gap])).astype(np.float32)


def test_null_sink_monitor_round_trip(pulse, tmp_path):
    played = _probe()
    sf.write(str(tmp_path / "probe.wav"), played, RATE, subtype="FLOAT")
    recorder = subprocess.Popen(
        [sys.executable, str(RECORD), "pulse", "3.0", str(tmp_path / "got.npz")],
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

    # Where the probe sits in the capture (full cross-correlation), and how well it matches there.
    xcorr = np.correlate(y, played, mode="valid")
    lag = int(np.argmax(xcorr))
    seg = y[lag : lag + len(played)]
    corr = float(np.dot(seg, played) / (np.linalg.norm(seg) * np.linalg.norm(played)))
    assert corr > 0.95
    # Capture time of the probe's first sample, from the stamp of the block it fell in.
    t_probe = stamps[lag // block] + (lag % block) * NS // RATE
    delay_s = (t_probe - t_play) / NS
    assert -0.03 <= delay_s < 0.15, f"probe stamped {delay_s * 1000:.1f} ms after paplay started"


def test_stream_devices_lists_the_pulse_device(pulse):
    """`stream devices` in a process that sees the server: the ALSA "pulse" device, with inputs, at 44.1 kHz."""
    out = subprocess.run([sys.executable, "-m", "stream.cli", "devices"], env=pulse, capture_output=True, text=True,
                         timeout=30, check=True).stdout
    rows = [line.split() for line in out.splitlines()[1:-1]]
    pulse_row = next(row for row in rows if row[1] == "pulse")
    assert int(pulse_row[2]) >= 1 and int(pulse_row[3]) == 44_100
