"""Is an input device delivering audio again? Asked in a child process: `python -m nodes.capture.probe NAME RATE CH`.

Why a child: opening a PortAudio stream on a device that is gone (a PulseAudio source removed, through ALSA's
"pulse" plugin) can leave PortAudio's thread spinning on a failing poll, printing an error line per turn. In a
child, that spin is killed at the timeout and its output thrown away; the capture node reopens the device itself
only once a probe heard a block. Exit 0 = a block arrived within `WAIT_S`.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading

WAIT_S = 1.5  # s the child waits for its first block


async def device_answers(name: str, rate: int, channels: int, timeout_s: float = WAIT_S + 3.0) -> bool:
    """Whether input device `name` (PortAudio's name: a fresh enumeration numbers devices anew) delivers a block."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "nodes.capture.probe", name, str(rate), str(channels),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        return await asyncio.wait_for(proc.wait(), timeout_s) == 0
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        return False


def main() -> None:
    import sounddevice as sd

    name, rate, channels = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    heard = threading.Event()
    stream = sd.InputStream(device=name, samplerate=rate, channels=channels, dtype="float32",
                            callback=lambda *_: heard.set())
    stream.start()
    os._exit(0 if heard.wait(WAIT_S) else 1)  # no clean close: it may hang on a device that is gone


if __name__ == "__main__":
    main()
