"""Writing output files so that a crash, a full disk or Ctrl-C never leaves a partial one where a reader looks.

`atomic_write` writes a temporary file in the destination's folder (same file system), flushes and fsyncs it, then
renames it over the destination: readers see the old file or the new one, never half of it (a 0-byte RTTM would
read as "no speech", a truncated .npz as corrupt).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np


@contextlib.contextmanager
def atomic_write(path: Path | str, mode: str = "wb", encoding: str | None = None) -> Iterator[IO[Any]]:
    """A file object to write `path`'s new content into; `path` is replaced only when the block ends cleanly."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide results from other users
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save_npz(path: Path | str, meta: dict[str, Any], arrays: dict[str, Any]) -> None:
    """An .npz of `arrays` plus `meta` as JSON under "meta" (checkpoints, weight files), written atomically: a kill at
    any moment leaves the previous file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        np.savez(f, meta=np.array(json.dumps(meta)), **arrays)
