"""YAMNet (MobileNet-v1 on 96x64 log-mel patches, 521 AudioSet classes) as pure JAX over a parameter pytree.

Figure, per 0.96 s patch [96 frames, 64 mel]: 3x3 conv stride 2 (32) -> 13 depthwise-separable blocks (3x3
depthwise + ReLU, 1x1 pointwise + ReLU; strides 1,2,1,2,1,2,1,1,1,1,1,2,1; widths 64..1024) -> mean over time and
frequency = the 1024-d embedding -> dense 521 -> sigmoid. Batch norm is folded into each conv's bias, as in the
TFLite graph the weights come from (`convert.py`).

Parameter tree:
    layer1/conv/{kernel [3,3,1,32] HWIO, bias [32]}
    layer{2..14}/depthwise/{kernel [3,3,1,C], bias [C]}
    layer{2..14}/pointwise/{kernel [C_in, C_out] int8 values, scale [C_out], bias [C_out]}
    logits/{kernel [1024, 521] int8 values, scale [521], bias [521]}

Arithmetic "tflite" (default) runs the pointwise convs and the classifier as LiteRT's XNNPACK kernels run the
file's dynamic-range int8 ops: each pixel's (or the embedding's) activations are quantised to int8 on the fly
(`frontend.quantize_rows`), multiplied by the int8 weights exactly, and rescaled. "float" uses the dequantised
weights on float activations. The file's arithmetic is sensitive: a 1e-6 relative change of the input moves
some scores by up to ~0.01 (LiteRT's own reference kernels differ from its XNNPACK ones by up to 0.3).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nodes.sed.frontend import ARITHMETICS, MEL_BINS, Arithmetic, int8_matmul
from stream.errors import AudioError, ModelError

Params = dict[str, Any]
PATCH_FRAMES = 96  # 0.96 s of 10 ms frames
PATCH_SECONDS = 0.96
NUM_CLASSES = 521
EMBEDDING = 1024
STRIDES = (2, 1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1)  # layer1 .. layer14
_HIGHEST = jax.lax.Precision.HIGHEST


def _int8_dense(p: Params, x: jax.Array) -> jax.Array:
    """x [..., C_in] -> [..., C_out] through an int8 weight with per-output scales, plus bias: for "tflite"
    (`colsum` present) LiteRT's dynamic-range op redone exactly (`frontend.int8_matmul`, ~5x faster than float on
    CPU); for "float" a float matmul."""
    if "colsum" in p:
        return int8_matmul(x, p["kernel"], p["colsum"], p["scale"]) + p["bias"]
    return jnp.matmul(x, p["kernel"], precision=_HIGHEST) + p["bias"]


def prepare(params: Params, arithmetic: Arithmetic = "tflite") -> Params:
    """Converted weights -> what `yamnet` runs on: int8 kernels with their column sums ("tflite"), or dequantised
    float kernels ("float"); every other leaf as float32."""
    if arithmetic not in ARITHMETICS:
        raise ModelError(f"YAMNet arithmetic must be one of {ARITHMETICS}, got {arithmetic!r}")

    def int8_layer(p: Params) -> Params:
        kernel, scale, bias = np.asarray(p["kernel"], np.int8), np.asarray(p["scale"], np.float32), p["bias"]
        if arithmetic == "float":
            return {"kernel": kernel.astype(np.float32) * scale, "bias": np.asarray(bias, np.float32)}
        return {"kernel": kernel, "colsum": kernel.astype(np.int32).sum(0), "scale": scale,
                "bias": np.asarray(bias, np.float32)}

    out = {name: {kind: (int8_layer(p) if "scale" in p else {k: np.asarray(v, np.float32) for k, v in p.items()})
                  for kind, p in layer.items()} for name, layer in params.items() if name != "logits"}
    out["logits"] = int8_layer(params["logits"])
    return out


def _same_pads(size: int, stride: int) -> tuple[int, int]:
    """TensorFlow's SAME padding of a 3-tap axis: the odd pixel goes at the end."""
    total = max((-(-size // stride) - 1) * stride + 3 - size, 0)
    return total // 2, total - total // 2


def _conv3x3(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """3x3 depthwise conv, NHWC, SAME, as nine shifted multiply-adds: kernel [3, 3, 1, C]. With one input channel
    it is also layer 1's full conv (the channel broadcasts to C). XLA's grouped convolution on CPU is ~20x slower."""
    _, height, width, _ = x.shape
    (top, bottom), (left, right) = _same_pads(height, stride), _same_pads(width, stride)
    padded = jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    out_h, out_w = -(-height // stride), -(-width // stride)
    out = None
    for i in range(3):
        for j in range(3):
            tap = padded[:, i : i + stride * (out_h - 1) + 1 : stride, j : j + stride * (out_w - 1) + 1 : stride]
            out = tap * kernel[i, j, 0] if out is None else out + tap * kernel[i, j, 0]
    return out


def yamnet(params: Params, patches: jax.Array) -> tuple[jax.Array, jax.Array]:
    """[B, 96, 64] log-mel patches -> (scores [B, 521] in [0, 1], embeddings [B, 1024]); `params` from `prepare`."""
    p = params["layer1"]["conv"]
    x = jax.nn.relu(_conv3x3(patches[..., None], p["kernel"], STRIDES[0]) + p["bias"])
    for layer, stride in enumerate(STRIDES[1:], start=2):
        dw, pw = params[f"layer{layer}"]["depthwise"], params[f"layer{layer}"]["pointwise"]
        x = jax.nn.relu(_conv3x3(x, dw["kernel"], stride) + dw["bias"])
        x = jax.nn.relu(_int8_dense(pw, x))
    embeddings = x.mean(axis=(1, 2))
    return jax.nn.sigmoid(_int8_dense(params["logits"], embeddings)), embeddings


def read_class_names(path: Path) -> list[str]:
    """Display names of `yamnet_class_map.csv` (index, mid, display_name), in index order."""
    try:
        with open(path, newline="") as f:
            names = [row["display_name"] for row in csv.DictReader(f)]
    except (OSError, KeyError) as exc:
        raise ModelError(f"cannot read YAMNet's class map {path} ({exc}): it comes with yamnet.tflite") from exc
    if len(names) != NUM_CLASSES:
        raise ModelError(f"{path} lists {len(names)} classes, YAMNet has {NUM_CLASSES}")
    return names


def _buckets(max_batch: int) -> tuple[int, ...]:
    sizes = [1]
    while sizes[-1] < max_batch:
        sizes.append(min(2 * sizes[-1], max_batch))
    return tuple(sizes)


class Yamnet:
    """Scores and embeddings of log-mel patches, batched in power-of-two buckets (one compile per bucket).

    `max_batch` bounds one device call; larger inputs go through in chunks of `max_batch`.
    """

    def __init__(self, params: Params, class_names: list[str], max_batch: int = 64,
                 arithmetic: Arithmetic = "tflite") -> None:
        if max_batch < 1:
            raise ModelError(f"max_batch must be >= 1, got {max_batch}")
        self.class_names = class_names
        self.arithmetic = arithmetic
        self.buckets = _buckets(max_batch)
        self._params = jax.device_put(prepare(params, arithmetic))
        self._run = jax.jit(yamnet)

    def warmup(self) -> None:
        """Compile every bucket now, not on the first live patch."""
        for size in self.buckets:
            jax.block_until_ready(self._run(self._params, jnp.zeros((size, PATCH_FRAMES, MEL_BINS), jnp.float32)))

    def __call__(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[B, 96, 64] log-mel patches -> (scores [B, 521], embeddings [B, 1024]) as float32 NumPy."""
        x = np.asarray(patches, np.float32)
        if x.ndim != 3 or x.shape[1:] != (PATCH_FRAMES, MEL_BINS):
            raise AudioError(f"YAMNet takes log-mel patches [batch, {PATCH_FRAMES}, {MEL_BINS}], got {x.shape}")
        if not np.isfinite(x).all():
            raise AudioError("log-mel patches contain NaN or infinite values: check the audio fed to the front end")
        scores, embeddings = [], []
        largest = self.buckets[-1]
        for start in range(0, len(x), largest):
            chunk = x[start : start + largest]
            size = next(b for b in self.buckets if b >= len(chunk))
            padded = np.concatenate([chunk, np.zeros((size - len(chunk), *chunk.shape[1:]), np.float32)])
            s, e = self._run(self._params, padded)
            scores.append(np.asarray(s)[: len(chunk)])
            embeddings.append(np.asarray(e)[: len(chunk)])
        if not scores:
            return np.zeros((0, NUM_CLASSES), np.float32), np.zeros((0, EMBEDDING), np.float32)
        return np.concatenate(scores), np.concatenate(embeddings)


def load_yamnet(model_dir: Path | str | None = None, max_batch: int = 64, arithmetic: Arithmetic = "tflite") -> Yamnet:
    """YAMNet from the registry ("yamnet": converted once, cached, checksummed) or from a folder holding
    `yamnet.tflite` and `yamnet_class_map.csv` (converted in memory)."""
    from stream.models import load_params, source_path, unflatten

    if model_dir is None:
        params = load_params("yamnet")
        folder = source_path("yamnet").parent
    else:
        from nodes.sed.convert import yamnet_tflite

        folder = Path(model_dir)
        if not (folder / "yamnet.tflite").is_file():
            raise ModelError(f"no yamnet.tflite in {folder}: see `stream models info yamnet` for where to get it")
        params = unflatten(yamnet_tflite(folder / "yamnet.tflite"))
    return Yamnet(params, read_class_names(folder / "yamnet_class_map.csv"), max_batch, arithmetic)
