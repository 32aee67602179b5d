"""Where shared assets live: `STREAM_MODEL_DIR`, `STREAM_DATA_DIR`, `STREAM_CACHE_DIR`.

Defaults follow the project layout (`../shared/models`, `../shared/data` beside the repository root) so a
checkout next to `shared/` works with no configuration; elsewhere users set the variables.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _dir(env: str, default: Path) -> Path:
    value = os.environ.get(env)
    return Path(value).expanduser() if value else default


def model_dir() -> Path:
    """Folder holding upstream model files (read-only)."""
    return _dir("STREAM_MODEL_DIR", REPO_ROOT.parent / "shared" / "models")


def data_dir() -> Path:
    """Folder holding evaluation audio and references (read-only)."""
    return _dir("STREAM_DATA_DIR", REPO_ROOT.parent / "shared" / "data")


def cache_dir() -> Path:
    """Writable folder for converted weights and other derived files."""
    return _dir("STREAM_CACHE_DIR", Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "stream")
