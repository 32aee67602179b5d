"""The README's first commands are what a new user runs: they must exist, and CI must run the same test command."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _readme_commands() -> list[str]:
    """The shell commands in the README's first code block, comments stripped."""
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block and block.start() < 300, "README must open with its commands"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_setup_demo_and_test_commands():
    demo, tests = _readme_commands()
    assert demo.startswith(".ci/setup && .venv/bin/stream run configs/")
    graph = demo.split()[4]
    assert "nodes" in tomllib.loads((ROOT / graph).read_text())
    assert tests == ".ci/setup && .venv/bin/python -m pytest -q"


def test_ci_run_is_the_readme_test_command():
    run = ROOT / ".ci" / "run"
    assert os.access(run, os.X_OK) and os.access(ROOT / ".ci" / "setup", os.X_OK)
    assert _readme_commands()[1] in run.read_text().splitlines()
