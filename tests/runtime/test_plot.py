"""`stream plot`: a reference RTTM above a hypothesis from JSONL events, as a PNG with one lane per label."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from PIL import Image

from stream.paths import REPO_ROOT


def test_plot_reference_rttm_vs_jsonl_events(tmp_path, data):
    reference = data / "diarization" / "ami" / "reference.rttm"
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps(e) for e in [
        {"type": "speaker.turn", "stream": "dev01", "label": "SPEAKER_0", "start": 4.3, "stop": 6.8},
        {"type": "beat", "stream": "dev01", "t_audio": 5.0},
        {"type": "speaker.turn", "stream": "dev01", "label": "SPEAKER_1", "start": 7.0, "stop": 11.8},
        {"type": "sound.stop", "stream": "dev01", "rule": "smoke_alarm", "start": 20.0, "duration": 3.0},
    ]))
    out = tmp_path / "dev01.png"
    done = subprocess.run([sys.executable, "-m", "stream.cli", "plot", str(events), "--reference", str(reference),
                           "--uri", "dev01", "--out", str(out)], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr
    assert "8 reference and 3 hypothesis spans" in done.stdout
    image = np.asarray(Image.open(out).convert("RGB"), dtype=float)
    lanes = image.shape[0]
    assert image.shape[1] == 1200 and lanes > 200
    orange = ((image[..., 0] > 200) & (image[..., 1] > 100) & (image[..., 1] < 160) & (image[..., 2] < 80)).sum()
    blue = ((image[..., 2] > 150) & (image[..., 0] < 80)).sum()
    assert orange > 1000 and blue > 1000  # hypothesis bars (tab:orange) and reference bars (tab:blue) drawn

    bad = subprocess.run([sys.executable, "-m", "stream.cli", "plot", str(tmp_path / "nope.rttm"), "--out",
                          str(out)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=180)
    assert bad.returncode == 1 and "nope.rttm: no such file" in bad.stderr
