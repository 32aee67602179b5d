"""Audio files for the file-mode commands: find them, open them with a clear error, read them in blocks.

Memory stays flat for hours of audio: a file is decoded ``BLOCK_SECONDS`` at a time, down-mixed and resampled
with the same `Conformer` the live capture node uses.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from nodes.capture.conform import Block, Conformer, check_finite, check_rate
from stream.errors import AudioError

BLOCK_SECONDS = 30.0  # decode this much audio at a time
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".oga", ".opus", ".aiff", ".aif")


def find_audio(paths: list[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(files as given and audio files in folders, recursed and sorted; [(path, why it was left out)] for paths
    that are missing and folders that cannot be read), so a batch command reports each and goes on with the rest."""
    out: list[Path] = []
    problems: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_dir():
            found: list[Path] = []
            for folder, _, names in os.walk(path, onerror=lambda exc: problems.append(
                    (Path(exc.filename), f"cannot read this folder ({exc.strerror}); its files are left out"))):
                found += [Path(folder) / n for n in names if Path(n).suffix.lower() in AUDIO_SUFFIXES]
            out += sorted(p for p in found if p.is_file())
        elif path.is_file():
            out.append(path)
        else:
            problems.append((path, "no such file or folder"))
    return out, problems


def audio_files(paths: list[Path]) -> list[Path]:
    """Files as given, folders recursed for audio suffixes (sorted); AudioError for the first path that is missing
    or a folder that cannot be read (for commands that need every input, e.g. enrolment)."""
    files, problems = find_audio(paths)
    if problems:
        path, reason = problems[0]
        raise AudioError(f"{path}: {reason}")
    return files


def open_audio(path: Path) -> sf.SoundFile:
    """The opened file, or AudioError saying why it cannot be used (unreadable, not audio, empty, truncated)."""
    try:
        with open(path, "rb") as raw:
            head = raw.read(4096)
    except OSError as exc:
        raise AudioError(f"cannot read the file ({exc.strerror})") from None
    try:
        f = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"cannot decode audio ({exc}); give WAV, FLAC, OGG or MP3 "
                         "(convert others with `ffmpeg -i IN OUT.flac`)") from None
    if f.frames == 0:
        f.close()
        raise AudioError("the file has no samples")
    check_rate(int(f.samplerate), "file")
    declared = _wav_data_bytes(head)
    available = f.frames * f.channels * _wav_sample_bytes(f.subtype)
    if declared is not None and available and declared > available + f.channels * 8:
        f.close()
        per_second = available / f.frames * f.samplerate
        raise AudioError(f"the file is truncated: its header announces {declared / per_second:.1f} s of audio, only "
                         f"{available / per_second:.1f} s are there; repair or re-encode it "
                         "(`ffmpeg -i IN OUT.flac` keeps what is there)")
    return f


def _wav_data_bytes(head: bytes) -> int | None:
    """Size of the data chunk a RIFF/WAVE header announces (None: not a WAV, or a streaming placeholder size)."""
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    offset = 12
    while offset + 8 <= len(head):
        chunk, size = struct.unpack_from("<4sI", head, offset)
        if chunk == b"data":
            return None if size in (0, 0xFFFFFFFF) else size
        offset += 8 + size + (size & 1)
    return None


def _wav_sample_bytes(subtype: str) -> int:
    """Bytes per sample of a WAV subtype (0 for compressed ones, which the truncation check skips)."""
    return {"PCM_U8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}.get(subtype, 0)


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
