"""Audio files for the file-mode commands: find them, open them with a clear error, read them in blocks.

Memory stays flat for hours of audio: a file is decoded ``BLOCK_SECONDS`` at a time, down-mixed and resampled
with the same `Conformer` the live capture node uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from nodes.capture.conform import Block, Conformer, check_finite, check_rate
from stream.errors import AudioError

BLOCK_SECONDS = 30.0  # decode this much audio at a time
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".oga", ".opus", ".aiff", ".aif")


def audio_files(paths: list[Path]) -> list[Path]:
    """Files as given, folders recursed for audio suffixes (sorted); a missing path raises AudioError."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
        elif path.is_file():
            out.append(path)
        else:
            raise AudioError(f"{path}: no such file or folder")
    return out


def open_audio(path: Path) -> sf.SoundFile:
    """The opened file, or AudioError saying why it cannot be used."""
    try:
        f = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"cannot decode audio ({exc}); give WAV, FLAC, OGG or MP3 "
                         "(convert others with `ffmpeg -i IN OUT.flac`)") from None
    if f.frames == 0:
        f.close()
        raise AudioError("the file has no samples")
    check_rate(int(f.samplerate), "file")
    return f


def read_blocks(path: Path, rate: int = 16000) -> Iterator[np.ndarray]:
    """Mono float32 blocks at `rate` Hz of the file (down-mixed, resampled), never the whole file at once."""
    with open_audio(path) as f:
        block = round(BLOCK_SECONDS * f.samplerate)
        conformer = Conformer(int(f.samplerate), rate, 1, round(BLOCK_SECONDS * rate))
        while True:
            try:
                samples = f.read(block, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise AudioError(f"decoding failed at {f.tell() / f.samplerate:.2f} s ({exc}): "
                                 "the file is truncated or corrupt") from None
            last = len(samples) == 0
            if not last:
                check_finite(samples, f"audio at {f.tell() / f.samplerate:.2f} s")
            for out in (conformer.flush() if last else conformer.push(Block(samples, 0))):
                yield out.samples[:, 0]
            if last:
                return
