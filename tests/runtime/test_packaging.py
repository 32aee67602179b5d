"""The installed package carries its data files: a wheel built from the source tree holds every file that the
`stream` and `nodes` packages read at run time (schemas, web page, PLDA, background bank, tuned BeatNet weights).
An editable install hides a missing `package-data` entry; a user's `pip install .` would fail at run time."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from stream.paths import REPO_ROOT


def data_files(root: Path) -> set[str]:
    """Files of the two packages that are not Python source or bytecode, relative to the repo root."""
    return {p.relative_to(root).as_posix() for package in ("stream", "nodes") for p in (root / package).rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts}


def test_the_wheel_holds_every_data_file(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    for package in ("stream", "nodes"):
        shutil.copytree(REPO_ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist")], check=True, cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("stream-*.whl"))
    packed = set(zipfile.ZipFile(wheel).namelist())
    expected = data_files(source)
    assert {"nodes/beats/beatnet_tuned.npz", "nodes/sed/background.npz", "stream/web/page.html"} <= expected
    assert expected - packed == set(), "add them to [tool.setuptools.package-data] in pyproject.toml"
