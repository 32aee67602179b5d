"""A live stream's RTTM, appended as turns close: the node keeps a byte count, not the turns (issue 22).

The checkpoint holds ``written`` (bytes of the file that the checkpointed state accounts for) and the turns not
written yet (a failed write: they are tried again with the next ones). A node killed after its last checkpoint
may have appended lines that its restored state will close again (the lost windows become silence, so they may
end elsewhere); the next write first truncates the file back to ``written``: no line lost, none told twice.
Lines are written with ``os.write`` (in the page cache at once: a SIGKILL loses none), not fsynced, as the
checkpoint itself; a file found shorter than ``written`` (power loss, deleted) is continued from its length.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any

from stream.rttm import Turn, format_rttm

log = logging.getLogger(__name__)


class RttmFile:
    """``append(turns)`` adds their lines (`format_rttm`, so the file equals `write_rttm` of all of them when they
    come in start order); raises OSError with nothing partial left behind and the turns kept for the next try."""

    def __init__(self, path: Path, uri: str, written: int = 0, unwritten: list[Turn] | None = None) -> None:
        self.path, self.uri, self.written = path, uri, written
        self.unwritten: list[Turn] = list(unwritten or [])

    def append(self, turns: list[Turn], create: bool = False) -> None:
        """Write `turns` and any left from a failed try; `create`: also when there is none (end of stream: an
        empty file reads "no speech")."""
        self.unwritten += turns
        if not self.unwritten and not create:
            return
        text = format_rttm(self.uri, self.unwritten).encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size < self.written:
                log.warning("%s is %d bytes, %d expected (lost or removed): continuing it", self.path, size,
                            self.written)
                self.written = size
            os.ftruncate(fd, self.written)  # lines of a run killed after its checkpoint: its turns come again
            os.lseek(fd, self.written, os.SEEK_SET)
            view = memoryview(text)
            while view:
                view = view[os.write(fd, view):]
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, self.written)  # no half line
                if self.written == 0:
                    os.unlink(self.path)  # no 0-byte file, which would read "no speech"
            raise
        finally:
            os.close(fd)
        self.written += len(text)
        self.unwritten = []

    def state_dict(self) -> dict[str, Any]:
        return {"written": self.written, "unwritten": [list(t) for t in self.unwritten]}

    @classmethod
    def restored(cls, path: Path, uri: str, state: dict[str, Any]) -> RttmFile:
        return cls(path, uri, int(state["written"]),
                   [Turn(float(s), float(e), str(label)) for s, e, label in state["unwritten"]])
