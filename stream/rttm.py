"""RTTM and UEM files: the standard text formats of diarisation output and of scored regions.

RTTM (NIST Rich Transcription): one ``SPEAKER <uri> <channel> <onset s> <duration s> <NA> <NA> <label> <NA> <NA>``
line per speech turn. UEM: one ``<uri> <channel> <start s> <end s>`` line per scored region.
Both keep several recordings (``uri``) in one file, as the AMI and DIHARD references do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from stream.errors import StreamError
from stream.files import atomic_write


class Turn(NamedTuple):
    """One speaker's speech from ``start`` to ``end`` (seconds from the start of the recording)."""

    start: float
    end: float
    label: str


class FormatError(StreamError):
    """An RTTM or UEM file has a line that does not follow the format."""


def read_rttm(path: Path | str) -> dict[str, list[Turn]]:
    """Turns per uri, in file order. Non-SPEAKER lines (SPKR-INFO, comments) are skipped."""
    turns: dict[str, list[Turn]] = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields or fields[0] != "SPEAKER":
            continue
        if len(fields) < 8:
            raise FormatError(f"{path}:{n}: an RTTM SPEAKER line needs at least 8 fields, got {len(fields)}: {line!r}")
        try:
            onset, duration = float(fields[3]), float(fields[4])
        except ValueError:
            raise FormatError(f"{path}:{n}: onset and duration must be numbers (seconds): {line!r}") from None
        if duration < 0:
            raise FormatError(f"{path}:{n}: negative duration {duration}: {line!r}")
        turns.setdefault(fields[1], []).append(Turn(onset, onset + duration, fields[7]))
    return turns


def rttm_uri(name: str) -> str:
    """`name` (a file stem, a stream id) as an RTTM uri: fields are space-separated, so whitespace becomes '_'."""
    return re.sub(r"\s+", "_", name.strip()) or "_"


def format_rttm(uri: str, turns: Iterable[Turn]) -> str:
    """RTTM text of one recording (`uri` made safe by `rttm_uri`), turns sorted by start time, times in ms."""
    uri = rttm_uri(uri)
    return "".join(
        f"SPEAKER {uri} 1 {t.start:.3f} {t.end - t.start:.3f} <NA> <NA> {t.label} <NA> <NA>\n"
        for t in sorted(turns)
        if t.end > t.start
    )


def write_rttm(path: Path | str, uri: str, turns: Iterable[Turn]) -> None:
    """Write atomically: a full disk or a crash leaves no partial (or 0-byte, "no speech") RTTM behind."""
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(format_rttm(uri, turns))


def read_uem(path: Path | str) -> dict[str, list[tuple[float, float]]]:
    """Scored regions per uri (seconds)."""
    regions: dict[str, list[tuple[float, float]]] = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith(";"):
            continue
        if len(fields) != 4:
            raise FormatError(f"{path}:{n}: a UEM line is '<uri> <channel> <start> <end>', got {line!r}")
        try:
            start, end = float(fields[2]), float(fields[3])
        except ValueError:
            raise FormatError(f"{path}:{n}: start and end must be numbers (seconds): {line!r}") from None
        if end < start:
            raise FormatError(f"{path}:{n}: end {end} before start {start}")
        regions.setdefault(fields[0], []).append((start, end))
    return regions


def write_uem(path: Path | str, regions: dict[str, list[tuple[float, float]]]) -> None:
    Path(path).write_text(
        "".join(f"{uri} NA {s:.3f} {e:.3f}\n" for uri, spans in regions.items() for s, e in spans), encoding="utf-8"
    )
