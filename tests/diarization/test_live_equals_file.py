"""File mode (windows batched through the models) gives what the live path (one window at a time, audio in
20 ms blocks) gives for the same recording: same labels, turn boundaries within one frame."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from nodes.diarization.files import diarize_file
from nodes.diarization.live import LiveDiarizer
from nodes.diarization.pipeline import DiarizationConfig
from nodes.diarization.windows import WindowAnalyzer
from stream.models import load_params

CLIP = "trn00"  # 3 speakers with overlaps


def test_live_equals_file_mode(data):
    path = data / "diarization" / "ami" / f"{CLIP}.flac"
    config = DiarizationConfig()
    analyzer = WindowAnalyzer(load_params("segmentation-3.0"), load_params("campplus"), config.geometry)
    file_turns = diarize_file(path, analyzer, config).turns
    live = LiveDiarizer(analyzer, config)
    audio, _ = sf.read(path, dtype="float32")
    for start in range(0, len(audio), 320):
        live.push(audio[start:start + 320])
    live.finish()
    live_turns = live.diarizer.turns()
    assert [t.label for t in live_turns] == [t.label for t in file_turns]
    frame = config.geometry.resolution
    assert np.allclose([t.start for t in live_turns], [t.start for t in file_turns], atol=frame + 1e-9)
    assert np.allclose([t.end for t in live_turns], [t.end for t in file_turns], atol=frame + 1e-9)
    assert len(file_turns) >= 5
