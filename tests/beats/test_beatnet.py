"""BeatNet's CRNN in JAX against BeatNet's own PyTorch model (the package's `BDA`, our converted weights of
../shared/models/beatnet/), and our front end against madmom's as BeatNet builds it (golden features written by
make_golden.py). Guards: activations within 1e-4 of PyTorch for all three models; features within 1e-4 of madmom;
the streamed front end (20 ms blocks, or blocks of up to 23 frames) equals the whole-clip one; a wrong checkpoint
is refused by name."""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from BeatNet.model import BDA

from nodes.beats.beatnet import BeatNetFrontEnd, clip_features, crnn, init_lstm_state
from nodes.beats.convert import beatnet
from stream.errors import ModelError
from stream.models import load_params
from beat_signals import golden_clip

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("model", [1, 2, 3])
def test_crnn_parity_with_pytorch(models, model):
    feats = np.load(GOLDEN / "beatnet_features.npy")
    reference = BDA(272, 150, 2, "cpu")
    reference.load_state_dict(torch.load(models / "beatnet" / f"model_{model}_weights.pt", map_location="cpu"))
    reference.eval()
    with torch.no_grad():
        theirs = reference.final_pred(reference(torch.from_numpy(feats)[None])[0]).numpy().T
    ours, _ = crnn(load_params(f"beatnet-{model}"), jnp.asarray(feats), init_lstm_state())
    assert np.abs(np.asarray(ours) - theirs).max() <= 1e-4


def test_streamed_front_end_matches_madmom():
    golden_feats = np.load(GOLDEN / "beatnet_features.npy")
    golden_act = np.load(GOLDEN / "beatnet_activations.npy")
    x = golden_clip()
    front = BeatNetFrontEnd(load_params("beatnet-1"))
    streamed = np.concatenate([front.push(x[i:i + 441], last=i + 441 >= len(x)) for i in range(0, len(x), 441)])
    assert streamed.shape == (len(golden_feats), 2)
    assert np.abs(streamed - golden_act[:, :2]).max() <= 1e-4
    assert np.abs(clip_features(x) - golden_feats).max() <= 1e-4
    # blocks of 0 to 23 frames: the step's chunks of 1, 2 and 4 frames, padded ones included, carry the same state
    front.reset()
    sizes, blocks, i = [100, 5000, 441, 10000, 1500, 2], [], 0
    while i < len(x):
        size = sizes[len(blocks) % len(sizes)]
        blocks.append(front.push(x[i:i + size], last=i + size >= len(x)))
        i += size
    assert np.abs(np.concatenate(blocks) - streamed).max() <= 1e-5


def test_converter_refuses_another_checkpoint(tmp_path):
    state = {k: torch.zeros(1) for k in ("conv1.weight", "encoder.extra")}
    torch.save(state, tmp_path / "other.pt")
    with pytest.raises(ModelError, match="not BeatNet's CRNN"):
        beatnet(tmp_path / "other.pt")
