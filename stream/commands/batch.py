"""What every file-batch command does around its per-file work, so none of them loses a file silently.

- `inputs`: the audio files of the paths given; a missing path or an unreadable folder is one error line and the
  rest go on (the command exits 1 at the end).
- `refuse_collisions`: outputs are named after the input's stem (DESIGN.md), so `a/x.flac` and `b/x.wav` would
  write the same `x.rttm`. Such a batch is refused before any work, naming the inputs, rather than renaming
  outputs behind the user's back (names other tools and `stream eval` rely on would then depend on the order).
- `check_out_dir`: `--out` is created and proven writable before models load, not after an hour of compute.
- `pending`: with `--skip-existing`, the files whose outputs are all there already are skipped, so a run stopped
  by Ctrl-C or a full disk picks up where it ended.
- `write_output`: each output is written atomically (`stream.files`); a write error is that file's error line.
"""

from __future__ import annotations

import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from stream.errors import ConfigError


def inputs(paths: list[Path]) -> tuple[list[Path], int]:
    """(audio files found, number of paths that could not be used, each reported on stderr)."""
    from nodes.capture.files import find_audio

    files, problems = find_audio(paths)
    for path, reason in problems:
        print(f"{path}: error: {reason}", file=sys.stderr)
    return files, len(problems)


def refuse_collisions(files: list[Path], output_name: Callable[[Path], str]) -> None:
    """ConfigError if two inputs would write the same output (`output_name(path)`), naming them all."""
    groups: dict[str, list[Path]] = defaultdict(list)
    for path in files:
        groups[output_name(path)].append(path)
    shared = {name: paths for name, paths in groups.items() if len(paths) > 1}
    if shared:
        listed = "; ".join(f"{name} <- {', '.join(map(str, paths))}" for name, paths in shared.items())
        raise ConfigError(f"inputs with the same name would overwrite each other's output ({listed}); rename them "
                          "or run them with separate --out folders")


def check_out_dir(out: Path) -> None:
    """Create `out` and prove it writable, or ConfigError saying why (a file, no permission, read-only)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot write there ({exc.strerror or exc}); give a writable folder") from None


def pending(files: list[Path], outputs: Callable[[Path], list[Path]]) -> list[Path]:
    """The files whose outputs are not all there yet (for --skip-existing); says how many were skipped."""
    todo = [path for path in files if not all(p.is_file() for p in outputs(path))]
    if len(todo) < len(files):
        print(f"skipping {len(files) - len(todo)} files whose outputs exist (--skip-existing)", file=sys.stderr)
    return todo


def write_output(source: Path, write: Callable[[], None]) -> bool:
    """Run `write` (an atomic write of `source`'s output); on a write error print it as `source`'s error."""
    try:
        write()
    except OSError as exc:
        print(f"{source}: error: cannot write its output ({exc.strerror or exc}: {exc.filename or ''})",
              file=sys.stderr)
        return False
    return True
