"""segmentation-3.0 in JAX: parity with pyannote.audio's PyanNet, geometry, AMI speech, streaming, bad input."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from nodes.segmentation.model import FRAME_DURATION, FRAME_STEP, num_frames, receptive_field_samples
from nodes.segmentation.powerset import MAPPING, to_multilabel, to_powerset
from nodes.segmentation.segment import RollingConfig, RollingSegmenter, segment, segment_file
from nodes.segmentation.convert import convert_state_dict
from nodes.segmentation.segment import _forward
from stream.checkpoint import load_torch_checkpoint, state_dict
from stream.errors import AudioError, ConfigError, ModelError
from stream.models import load_params

sys.path.insert(0, str(Path(__file__).parent))
from make_golden import CLIPS, clip_audio, golden_path  # noqa: E402


@pytest.fixture(scope="module")
def params():
    return load_params("segmentation-3.0")


@pytest.mark.parametrize("clip", CLIPS, ids=lambda c: f"{c[0]}@{c[1]:g}s+{c[2]:g}s")
def test_parity_with_pyannote_pyannet(params, clip):
    """Powerset log-probs match pyannote.audio 3.3.2's PyTorch PyanNet (goldens by make_golden.py) within 1e-4."""
    _, log_probs = segment(params, clip_audio(*clip)[None])
    golden = np.load(golden_path(*clip))
    assert log_probs.shape == golden.shape
    assert np.abs(log_probs - golden).max() <= 1e-4


def test_geometry():
    """589 frames per 10 s (pyannote's figure), 293 per 5 s; frames 270 samples apart, each seeing 991."""
    assert num_frames(160_000) == 589 and num_frames(80_000) == 293
    assert receptive_field_samples(1) == 991 and receptive_field_samples(2) - receptive_field_samples(1) == 270
    assert FRAME_STEP == pytest.approx(0.016875) and FRAME_DURATION == pytest.approx(0.0619375)
    assert num_frames(990) == 0 and num_frames(991) == 1


def test_converter_fails_on_any_gap(models):
    sd = state_dict(load_torch_checkpoint(models / "segmentation-3.0" / "pytorch_model.bin"), "state_dict")
    assert len(convert_state_dict(sd)) == 20 + 12  # 20 direct leaves + 3 LSTM leaves x 4 layers
    with pytest.raises(ModelError, match="missing.*lstm.weight_hh_l2"):
        convert_state_dict({k: v for k, v in sd.items() if k != "lstm.weight_hh_l2"})
    with pytest.raises(ModelError, match="unexpected.*extra.weight"):
        convert_state_dict({**sd, "extra.weight": np.zeros(3, np.float32)})


def test_powerset_round_trip():
    """The 7 classes are {}, {0}, {1}, {2}, {0,1}, {0,2}, {1,2}; hard decoding and encoding invert each other."""
    assert MAPPING.sum(axis=1).tolist() == [0, 1, 1, 1, 2, 2, 2]
    assert np.asarray(to_powerset(MAPPING)).tolist() == list(range(7))
    log_probs = np.log(np.full((5, 7), 0.01, np.float32))
    log_probs[np.arange(5), [0, 4, 6, 3, 5]] = np.log(0.94)
    assert np.asarray(to_multilabel(log_probs)).tolist() == [[0, 0, 0], [1, 1, 0], [0, 1, 1], [0, 0, 1], [1, 0, 1]]
    soft = np.asarray(to_multilabel(log_probs, soft=True))
    assert soft[1] == pytest.approx([0.96, 0.96, 0.03], abs=1e-5)


def _speech_frames(rttm: Path, uri: str, times: np.ndarray) -> np.ndarray:
    """True where the reference RTTM marks anyone speaking at each time (s)."""
    speech = np.zeros(len(times), bool)
    for line in rttm.read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == "SPEAKER" and fields[1] == uri:
            onset, duration = float(fields[3]), float(fields[4])
            speech |= (times >= onset) & (times < onset + duration)
    return speech


@pytest.mark.parametrize("uri,bound", [("dev00", 0.06), ("trn06", 0.11)])
def test_ami_speech_detection(params, data, uri, bound):
    """Frame-level speech detection error (miss + false alarm) / speech on 30 s AMI clips, 10 s windows."""
    audio, rate = sf.read(data / "diarization" / "ami" / f"{uri}.flac", dtype="float32")
    _, activity, _ = segment_file(params, audio, RollingConfig(window=10.0, step=10.0), batch=3)
    hyp = activity.max(axis=-1).reshape(-1) > 0.5
    frames = activity.shape[1]
    times = (np.arange(len(activity))[:, None] * 10.0 + np.arange(frames)[None] * FRAME_STEP + FRAME_DURATION / 2).reshape(-1)
    ref = _speech_frames(data / "diarization" / "ami" / "reference.rttm", uri, times)
    error = ((ref & ~hyp).sum() + (~ref & hyp).sum()) / ref.sum()
    assert error <= bound


def test_streaming_equals_offline(params, data):
    """Irregular pushes give the same windows (and numbers) as the batched whole-file call; state round-trips."""
    audio, _ = sf.read(data / "diarization" / "ami" / "trn08.flac", dtype="float32")
    audio = audio[: 16000 * 8]
    config = RollingConfig(window=5.0, step=0.5)
    starts, activity, log_probs = segment_file(params, audio, config)
    live, out, rng, pos = RollingSegmenter(params, config), [], np.random.default_rng(0), 0
    live.warmup()
    compiled = _forward._cache_size()
    while pos < len(audio):
        size = int(rng.integers(100, 12000))
        out += live.push(audio[pos : pos + size])
        pos += size
        if len(out) == 3:  # restart from a checkpoint mid-stream
            state = live.state_dict()
            live = RollingSegmenter(params, config)
            live.load_state_dict(state)
    assert len(out) == len(starts) == 7
    assert [w.start for w in out] == pytest.approx(starts.tolist())
    assert np.abs(np.stack([w.log_probs for w in out]) - log_probs).max() <= 1e-5
    assert np.stack([w.activity for w in out]).shape == activity.shape == (7, 293, 3)
    assert _forward._cache_size() == compiled  # no recompiles after warmup


def test_bad_input_is_a_clear_error(params):
    ok = np.zeros((1, 16000), np.float32)
    with pytest.raises(AudioError, match="16000 Hz"):
        segment(params, ok, sample_rate=8000)
    with pytest.raises(AudioError, match="NaN"):
        segment(params, np.where(np.arange(16000) == 5, np.nan, 0.0).astype(np.float32)[None])
    with pytest.raises(AudioError, match="at least 991 samples"):
        segment(params, ok[:, :500])
    with pytest.raises(AudioError, match="float audio"):
        segment(params, ok.astype(np.int16))
    with pytest.raises(AudioError, match="NaN"):
        RollingSegmenter(params).push(np.full(100, np.inf, np.float32))
    with pytest.raises(ConfigError, match="step"):
        RollingConfig(window=5.0, step=6.0)
    with pytest.raises(ConfigError, match="window"):
        RollingConfig(window=20.0)
