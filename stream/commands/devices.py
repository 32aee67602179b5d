"""`stream devices`: list the input devices PortAudio sees, and the sound server's sources by name (PulseAudio or
PipeWire), to pick one for `[capture] device` or `--source`."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("devices", help="list audio input devices (index, name, channels, default rate)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sounddevice as sd  # PortAudio enumerates devices on import

    default = sd.default.device[0]
    rows = [d for d in sd.query_devices() if d["max_input_channels"] > 0]
    if not rows:
        print("no input devices found (is a sound server running? with PulseAudio, `pactl info` should answer)")
        return 0
    print(f"{'index':>5}  {'name':<40} {'channels':>8} {'rate Hz':>8}")
    for d in rows:
        mark = "*" if d["index"] == default else " "
        print(f"{d['index']:>4}{mark}  {d['name']:<40} {d['max_input_channels']:>8} {int(d['default_samplerate']):>8}")
    print("* default input")
    sources = pulse_sources()
    if sources:
        print("\nPulseAudio/PipeWire sources (capture one with --source pulse:<name>, or device = \"pulse\" and "
              "PULSE_SOURCE=<name>):")
        for name in sources:
            print(f"  {name}")
    return 0


def pulse_sources() -> list[str]:
    """Source names of the PulseAudio/PipeWire server this process sees (`pactl list short sources`), or []."""
    import shutil
    import subprocess

    if not shutil.which("pactl"):
        return []
    try:
        out = subprocess.run(["pactl", "list", "short", "sources"], capture_output=True, text=True, timeout=5)
    except subprocess.TimeoutExpired:
        return []
    return [line.split("\t")[1] for line in out.stdout.splitlines() if out.returncode == 0 and "\t" in line]
