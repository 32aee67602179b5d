"""AST in JAX against Hugging Face `transformers` on a small randomly initialised model (built here, no download)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification

from nodes.sed.ast import AstConfig, convert_state_dict, features, load_ast, names, resize_positions
from stream.errors import ConfigError, ModelError


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A 2-layer AST with random weights (LayerNorms too), overlapping frequency patches; saved as HF saves it."""
    torch.manual_seed(0)
    config = ASTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                       num_mel_bins=32, max_length=48, frequency_stride=6, time_stride=10, num_labels=5,
                       id2label={i: f"class{i}" for i in range(5)}, label2id={f"class{i}": i for i in range(5)})
    model = ASTForAudioClassification(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            norm = "norm" in name
            p.copy_(torch.randn_like(p) * (0.1 if norm else 0.5) + (1.0 if norm and name.endswith("weight") else 0.0))
    folder = tmp_path_factory.mktemp("ast")
    model.save_pretrained(folder)
    return model, folder


def test_parity_with_transformers(reference):
    """Logits and pooled embedding of our JAX AST (loaded from the saved folder) match transformers to 1e-4."""
    model, folder = reference
    ours = load_ast(folder)
    assert ours.config.position_grid == (3, 4) and ours.class_names == [f"class{i}" for i in range(5)]
    x = np.random.default_rng(0).standard_normal((3, 48, 32)).astype(np.float32)
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).logits.numpy()
        pooled = model.audio_spectrogram_transformer(torch.from_numpy(x)).pooler_output.numpy()
    scores, embeddings = ours(x)
    assert np.abs(np.log(scores / (1 - scores)) - logits).max() < 1e-4
    assert np.abs(embeddings - pooled).max() < 1e-4


def test_transformers_4_layout_converts_the_same(reference):
    """Published checkpoints use the 4.x names (encoder.layer.N.attention.attention.query...): same parameters."""
    model, _ = reference
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    config = AstConfig.from_hf(model.config.to_dict())
    v5, v4 = names(2, 5), names(2, 4)
    old = {v4[ours]: state[theirs] for ours, theirs in v5.items()}
    a, b = convert_state_dict(state, config), convert_state_dict(old, config)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    with pytest.raises(ModelError, match="unused"):
        convert_state_dict({**state, "extra.weight": np.zeros(1)}, config)
    with pytest.raises(ModelError, match="missing"):
        convert_state_dict({k: v for k, v in state.items() if "fc1" not in k}, config)


def test_other_strides_and_lengths_interpolate_positions(reference):
    _, folder = reference
    ours = load_ast(folder, time_stride=8)  # overlapping time patches: (48 - 16) // 8 + 1 = 5 columns
    assert ours.config.grid(48) == (3, 5) and ours.config.grid(80) == (3, 9)
    scores, embeddings = ours(np.zeros((2, 80, 32), np.float32))
    assert scores.shape == (2, 5) and embeddings.shape == (2, 32) and np.isfinite(scores).all()
    positions = np.concatenate([np.arange(64.0).reshape(2, 32), np.full((12, 32), 3.0)]).astype(np.float32)
    resized = np.asarray(resize_positions(positions, (3, 4), (5, 7)))
    assert resized.shape == (2 + 35, 32)
    assert np.array_equal(resized[:2], positions[:2]) and np.allclose(resized[2:], 3.0)
    assert resize_positions(positions, (3, 4), (3, 4)) is positions
    with pytest.raises(ConfigError, match="strides"):
        ours.config.with_strides(0, 10)
    with pytest.raises(ModelError, match="no config.json"):
        load_ast(folder / "missing")


def test_features_match_the_feature_extractor():
    """`features` is ASTFeatureExtractor's input (Kaldi fbank, Hann window, 128 bins, AudioSet normalisation)."""
    wave = 0.1 * np.random.default_rng(1).standard_normal(16000).astype(np.float32)
    theirs = ASTFeatureExtractor()(wave, sampling_rate=16000, return_tensors="np")["input_values"][0]
    assert np.abs(features(wave) - theirs).max() < 1e-5
