"""`stream devices`: list the input devices PortAudio sees, to pick one for `[capture] device` or `--source`."""

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
    return 0
