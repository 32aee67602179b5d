"""The number of speakers follows the voices: simulated meetings (bench/simulate_meetings.py, tune half of the
LibriSpeech speakers, reverberant, 15 dB SNR) of 2, 5 and 8 speakers through `diarize_file`, online at 5 s and
refined. Measured at the shipped defaults: refined 3 of 2, 5 of 5, 8 of 8 (±1 allowed; AHC alone found 1 of 2, the
"auto" refinement keeps the online pass's 3 there, which separate the embeddings better); online at 5 s 3, 6 and 6:
it may merge voices but must never invent more than one."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from nodes.diarization.files import diarize_file
from nodes.diarization.pipeline import DiarizationConfig
from nodes.diarization.windows import WindowAnalyzer
from stream.models import load_params

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import simulate_meetings as sim  # noqa: E402


@pytest.fixture(scope="module")
def analyzer() -> WindowAnalyzer:
    config = DiarizationConfig()
    return WindowAnalyzer(load_params("segmentation-3.0"), load_params("campplus"), config.geometry,
                          config.overlap_weight)


def session(data: Path, speakers: int, seed: int) -> sim.Session:
    """A 2-minute meeting of the first long-utterance speakers of the tune half plus short-utterance ones."""
    tune = sim.split_halves(sim.speaker_groups(data))["tune"]
    long_ids = sorted(tune[sim.LONG_GROUP])[:2]
    short = sorted(s for g, spk in tune.items() if g != sim.LONG_GROUP for s in spk)[: speakers - len(long_ids)]
    every = {s: p for spk in tune.values() for s, p in spk.items()}
    chosen = {s: every[s] for s in long_ids[:speakers] + short}
    return sim.simulate(f"count{speakers}", seed, chosen, 2.0, set(long_ids), [], snr=15.0, overlap=0.1)


@pytest.mark.parametrize("speakers", [2, 5, 8])
def test_speaker_count(data, analyzer, tmp_path, speakers):
    meeting = session(data, speakers, seed=speakers)
    path = tmp_path / "meeting.wav"
    sf.write(path, meeting.audio, sim.RATE)
    config = DiarizationConfig()
    config = replace(config, geometry=replace(config.geometry, latency=5.0))
    result = diarize_file(path, analyzer, config, refine=True)
    refined = len({t.label for t in result.refined})
    online = result.speakers
    assert len({t.label for t in meeting.turns}) == speakers
    assert abs(refined - speakers) <= 1, f"refined found {refined} of {speakers}"
    assert 1 <= online <= speakers + 1, f"online (5 s) found {online} of {speakers}"
