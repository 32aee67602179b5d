"""pyannote segmentation-3.0 Lightning checkpoint -> our PyanNet parameter tree (see `model.py`).

Every tensor of the checkpoint is either mapped by the name table, folded (LSTM biases, both directions
stacked) or a fixed buffer that we rebuild and check; anything else, or anything missing, is an error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nodes.segmentation.model import LSTM_LAYERS, sinc_window_and_time
from stream.checkpoint import load_torch_checkpoint, state_dict
from stream.errors import ModelError

# ours -> checkpoint, one leaf each
NAMES: dict[str, str] = {
    "sincnet/wav_norm/weight": "sincnet.wav_norm1d.weight",
    "sincnet/wav_norm/bias": "sincnet.wav_norm1d.bias",
    "sincnet/filterbank/low_hz": "sincnet.conv1d.0.filterbank.low_hz_",
    "sincnet/filterbank/band_hz": "sincnet.conv1d.0.filterbank.band_hz_",
    "sincnet/conv1/weight": "sincnet.conv1d.1.weight",
    "sincnet/conv1/bias": "sincnet.conv1d.1.bias",
    "sincnet/conv2/weight": "sincnet.conv1d.2.weight",
    "sincnet/conv2/bias": "sincnet.conv1d.2.bias",
    **{f"sincnet/norm{i}/{k}": f"sincnet.norm1d.{i}.{k}" for i in range(3) for k in ("weight", "bias")},
    **{f"linear{i}/{k}": f"linear.{i}.{k}" for i in range(2) for k in ("weight", "bias")},
    "classifier/weight": "classifier.weight",
    "classifier/bias": "classifier.bias",
}

# fixed buffers of asteroid's ParamSincFB: not learned, rebuilt by `sinc_window_and_time` and checked here
BUFFERS = ("sincnet.conv1d.0.filterbank.window_", "sincnet.conv1d.0.filterbank.n_")


def _lstm_names(layer: int, direction: int) -> dict[str, str]:
    suffix = f"l{layer}" + ("_reverse" if direction else "")
    return {k: f"lstm.{k}_{suffix}" for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}


def convert_state_dict(sd: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Flat checkpoint tensors -> flat "/"-joined parameter dict; fails on any unmapped or missing tensor."""
    lstm_names = [n for layer in range(LSTM_LAYERS) for d in (0, 1) for n in _lstm_names(layer, d).values()]
    expected = set(NAMES.values()) | set(lstm_names) | set(BUFFERS)
    missing, unused = expected - sd.keys(), sd.keys() - expected
    if missing or unused:
        raise ModelError(
            f"not a pyannote segmentation-3.0 (PyanNet, 4-layer BiLSTM) checkpoint: "
            f"missing {sorted(missing)}; unexpected {sorted(unused)}"
        )
    window, time = sinc_window_and_time()
    for name, ours in zip(BUFFERS, (window, time)):
        if sd[name].shape != ours.shape or not np.allclose(sd[name], ours, atol=1e-6):
            raise ModelError(f"{name} differs from a 251-tap, 16 kHz sinc filterbank: unsupported SincNet variant")

    flat = {ours: np.asarray(sd[theirs], np.float32) for ours, theirs in NAMES.items()}
    for layer in range(LSTM_LAYERS):
        names = [_lstm_names(layer, d) for d in (0, 1)]
        flat[f"lstm/layer{layer}/w_ih"] = np.stack([sd[n["weight_ih"]] for n in names]).astype(np.float32)
        flat[f"lstm/layer{layer}/w_hh"] = np.stack([sd[n["weight_hh"]] for n in names]).astype(np.float32)
        flat[f"lstm/layer{layer}/b"] = np.stack([sd[n["bias_ih"]] + sd[n["bias_hh"]] for n in names]).astype(
            np.float32
        )
    if flat["classifier/weight"].shape[0] != 7:
        raise ModelError(
            f"classifier has {flat['classifier/weight'].shape[0]} outputs, expected 7 powerset classes "
            "(3 speakers, at most 2 at once)"
        )
    return flat


def pyannet(path: Path) -> dict[str, np.ndarray]:
    """Converter registered for "segmentation-3.0": a Lightning checkpoint (`pytorch_model.bin`)."""
    return convert_state_dict(state_dict(load_torch_checkpoint(path), "state_dict"))
