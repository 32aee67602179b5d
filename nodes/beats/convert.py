"""BeatNet checkpoint (PyTorch state dict) -> our parameter tree, through an explicit name table."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stream.errors import ModelError

NAMES = {  # ours -> BeatNet's `BDA` state dict
    "conv1/weight": "conv1.weight",
    "conv1/bias": "conv1.bias",
    "linear0/weight": "linear0.weight",
    "linear0/bias": "linear0.bias",
    **{f"lstm/{layer}/{ours}": f"lstm.{theirs}_l{layer}" for layer in (0, 1)
       for ours, theirs in (("w_ih", "weight_ih"), ("w_hh", "weight_hh"), ("b_ih", "bias_ih"), ("b_hh", "bias_hh"))},
    "linear/weight": "linear.weight",
    "linear/bias": "linear.bias",
}
SHAPES = {"conv1/weight": (2, 1, 10), "conv1/bias": (2,), "linear0/weight": (150, 262), "linear0/bias": (150,),
          "linear/weight": (3, 150), "linear/bias": (3,),
          **{f"lstm/{layer}/{name}": shape for layer in (0, 1)
             for name, shape in (("w_ih", (600, 150)), ("w_hh", (600, 150)), ("b_ih", (600,)), ("b_hh", (600,)))}}


def beatnet(path: Path) -> dict[str, np.ndarray]:
    """Flat {"conv1/weight": array, ...} from `model_N_weights.pt`; fails on any missing, unused or misshapen
    tensor (another BeatNet variant)."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise ModelError(f"{path}: not a readable PyTorch state dict ({exc})") from None
    state = {k: v.numpy() for k, v in state.items()}
    missing = sorted(v for v in NAMES.values() if v not in state)
    unused = sorted(set(state) - set(NAMES.values()))
    if missing or unused:
        raise ModelError(f"{path}: not BeatNet's CRNN: no tensor for {missing}; unmapped {unused}")
    out = {ours: state[theirs].astype(np.float32) for ours, theirs in NAMES.items()}
    bad = {k: v.shape for k, v in out.items() if v.shape != SHAPES[k]}
    if bad:
        raise ModelError(f"{path}: unexpected shapes {bad}; expected {({k: SHAPES[k] for k in bad})}")
    return out
