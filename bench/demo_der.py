"""DER of the speaker turns `stream run configs/demo.toml --duration 60` prints, against the AMI clip's reference.

Runs the README's first command as a user does, parses the printed `speaker.turn` lines, scores them (no collar,
overlap scored) on the clip's UEM (its first 30 s: the rest of the demo scene is an alarm and music), and prints
the command's start-up line. Acceptance of issue #21: <= 35 %.

    .venv/bin/python bench/demo_der.py
"""

from __future__ import annotations

import re
import subprocess
import sys

from nodes.diarization.evaluate import format_table, score
from stream.paths import REPO_ROOT, data_dir
from stream.rttm import Turn, read_rttm

TURN = re.compile(r"speaker\.turn\s+label=(\S+) .*?start=(\S+) stop=(\S+)")


def run() -> None:
    done = subprocess.run([sys.executable, "-m", "stream.cli", "run", "configs/demo.toml", "--duration", "60"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    print(done.stderr.splitlines()[0] if done.stderr else "(no start-up line)")
    scene = re.search(r"scene\s+0\.0-\s*\S+ s\s+diarization/ami/(\w+)\.flac", done.stderr)
    uri = scene[1] if scene else "dev01"
    turns = [Turn(float(m[2]), float(m[3]), m[1]) for m in TURN.finditer(done.stdout)]
    ami = data_dir() / "diarization" / "ami"
    uem = {uri: [(0.0, 30.0)]}
    rows = score({uri: read_rttm(ami / "reference.rttm")[uri]}, {uri: [t for t in turns if t.start < 30.0]}, uem)
    print(f"exit {done.returncode}; {len(turns)} printed turns; {uri}, first 30 s:")
    print(format_table(rows))


if __name__ == "__main__":
    run()
