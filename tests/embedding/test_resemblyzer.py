"""Resemblyzer's GE2E d-vector on our d-vector network: the converted weights give PyTorch's `nn.LSTM` + linear +
ReLU outputs, the front end gives librosa's mel power spectrogram (golden file from make_resemblyzer_golden.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nodes.embedding import dvector, resemblyzer
from nodes.embedding.files import load_audio
from stream.errors import ModelError

GOLDEN = Path(__file__).parent / "golden" / "resemblyzer_mel.npy"  # librosa 0.11 melspectrogram of 1 s
CLIP = "speakers/librispeech/librispeech_test-other/1688/1688-142285-0000.flac"


def test_network_matches_pytorch(models):
    path = models / "resemblyzer" / "pretrained.pt"
    state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
    lstm, linear = torch.nn.LSTM(40, 256, 3, batch_first=True), torch.nn.Linear(256, 256)
    lstm.load_state_dict({k.removeprefix("lstm."): v for k, v in state.items() if k.startswith("lstm.")})
    linear.load_state_dict({k.removeprefix("linear."): v for k, v in state.items() if k.startswith("linear.")})
    mel = np.abs(np.random.default_rng(0).normal(size=(3, 160, 40))).astype(np.float32)
    with torch.no_grad():
        hidden = lstm(torch.from_numpy(mel))[1][0][-1]
        reference = torch.relu(linear(hidden)).numpy()
    ours = np.asarray(dvector.embed(resemblyzer.convert_tree(path), mel, pooling="last", relu=True))
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_converter_rejects_other_checkpoints(tmp_path):
    bad = tmp_path / "bad.pt"
    torch.save({"model_state": {"lstm.weight_ih_l0": torch.zeros(1024, 40)}}, bad)
    with pytest.raises(ModelError, match="not Resemblyzer's encoder"):
        resemblyzer.convert(bad)


def test_mel_matches_librosa(data):
    wave = load_audio(data / CLIP)[:16000]
    np.testing.assert_allclose(resemblyzer.mel_power(wave), np.load(GOLDEN), rtol=1e-3, atol=1e-6)


def test_partials_follow_resemblyzer():
    assert resemblyzer.partial_starts(16000) == [0]  # 1 s: one partial, zero-padded
    assert resemblyzer.partial_starts(3 * 16000) == [0, 77, 154]  # the last one covers 0.75 of its span
