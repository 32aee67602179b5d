"""Segmentation weights by config: the shipped segmentation-3.0, or a fine-tuned file (`stream train-segmentation`).

A weights file is an `.npz` of the flat parameter names of `model.py` ("lstm/layer0/w_ih", ...) plus a `meta`
JSON string saying where it came from; every name and shape must match `PARAM_SHAPES`, so a file for another
architecture fails on load with the names that differ instead of at the first model call.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from nodes.segmentation.model import Params
from stream.errors import ModelError
from stream.files import save_npz

DEFAULT = "segmentation-3.0"  # registry name of the shipped weights

_LSTM = {f"lstm/layer{i}/{k}": shape for i in range(4) for k, shape in
         (("w_ih", (2, 512, 60 if i == 0 else 256)), ("w_hh", (2, 512, 128)), ("b", (2, 512)))}
PARAM_SHAPES: dict[str, tuple[int, ...]] = {
    "sincnet/wav_norm/weight": (1,), "sincnet/wav_norm/bias": (1,),
    "sincnet/filterbank/low_hz": (40, 1), "sincnet/filterbank/band_hz": (40, 1),
    "sincnet/conv1/weight": (60, 80, 5), "sincnet/conv1/bias": (60,),
    "sincnet/conv2/weight": (60, 60, 5), "sincnet/conv2/bias": (60,),
    "sincnet/norm0/weight": (80,), "sincnet/norm0/bias": (80,),
    "sincnet/norm1/weight": (60,), "sincnet/norm1/bias": (60,),
    "sincnet/norm2/weight": (60,), "sincnet/norm2/bias": (60,),
    "linear0/weight": (128, 256), "linear0/bias": (128,), "linear1/weight": (128, 128), "linear1/bias": (128,),
    "classifier/weight": (7, 128), "classifier/bias": (7,),
    **_LSTM,
}


def save_weights(params: Params, path: Path, meta: dict[str, Any]) -> None:
    """Write `params` and `meta` to `path` (.npz) atomically."""
    from stream.models import flatten

    flat = flatten(params)
    _check(flat, path)
    save_npz(path, meta, {k: np.asarray(v, np.float32) for k, v in flat.items()})


def load_segmentation(weights: str | Path | None = None) -> Params:
    """The parameter tree to run: segmentation-3.0 for None / "" / "segmentation-3.0", else the weights file."""
    from stream.models import load_params, unflatten

    if weights in (None, "", DEFAULT):
        return load_params(DEFAULT)
    path = Path(weights)
    if not path.is_file():
        raise ModelError(f"segmentation weights {path} not found: give a file written by `stream train-segmentation "
                         f"--out`, or leave the option out for {DEFAULT}")
    try:
        with np.load(path) as data:
            flat = {k: np.asarray(data[k], np.float32) for k in data.files if k != "meta"}
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} is not a readable segmentation weights file ({exc})") from exc
    _check(flat, path)
    return unflatten(flat)


def _check(flat: dict[str, Any], path: Path) -> None:
    missing, extra = PARAM_SHAPES.keys() - flat.keys(), flat.keys() - PARAM_SHAPES.keys()
    wrong = [f"{k} {tuple(np.shape(flat[k]))} (expected {s})" for k, s in PARAM_SHAPES.items()
             if k in flat and tuple(np.shape(flat[k])) != s]
    if missing or extra or wrong:
        raise ModelError(f"{path} is not a segmentation-3.0 (PyanNet) weights file: missing {sorted(missing)}, "
                         f"unexpected {sorted(extra)}, wrong shapes {wrong}")
