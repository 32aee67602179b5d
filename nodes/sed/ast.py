"""Audio Spectrogram Transformer (AST, Gong et al. 2021) in JAX, with a converter from Hugging Face checkpoints.

Figure: log-mel [time, freq] -> 16x16 patches every (frequency_stride, time_stride) bins (overlapping when a
stride is < 16) -> linear projection (a conv) -> [CLS] and distillation tokens in front -> + learned position
embeddings (resized bilinearly over the 2-D patch grid when the grid differs from the checkpoint's) -> ViT encoder
(pre-norm: LN -> multi-head attention -> +; LN -> MLP with GELU -> +) -> LN -> mean of the two tokens = pooled
embedding -> LN -> dense = logits (AudioSet models: sigmoid per class).

Parameter tree (ours; `NAMES` maps each leaf to both Hugging Face layouts):
    embed/{cls [H], distillation [H], positions [2 + F*T, H], kernel [H, 1, 16, 16], bias [H]}
    layer{i}/{ln1,ln2}/{scale,bias}; layer{i}/{query,key,value,out,fc1,fc2}/{kernel [in, out], bias}
    final_ln/{scale,bias}; head/ln/{scale,bias}; head/dense/{kernel [H, labels], bias}

The published weights (e.g. MIT/ast-finetuned-audioset-10-10-0.4593, BSD-3-Clause) are not shipped; users point
`load_ast` at a folder with `config.json` and `model.safetensors` (NumPy reader) or `pytorch_model.bin` (needs
the `convert` extra for torch).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nodes.features.kaldi import FbankConfig, fbank
from stream.errors import ConfigError, ModelError

Params = dict[str, Any]
_HIGHEST = jax.lax.Precision.HIGHEST
AUDIOSET_MEAN, AUDIOSET_STD = -4.2677393, 4.5689974  # AST's input normalisation: (fbank - mean) / (2 std)


@dataclass(frozen=True)
class AstConfig:
    """Geometry of one AST. `position_grid` is the (freq, time) patch grid the position embeddings were trained on;
    the strides may be changed after conversion (`with_strides`), the positions then follow by interpolation."""

    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    patch_size: int = 16
    frequency_stride: int = 10  # mel bins between patch starts (< patch_size: overlapping)
    time_stride: int = 10  # frames between patch starts
    num_mel_bins: int = 128
    max_length: int = 1024  # frames the checkpoint was trained on
    layer_norm_eps: float = 1e-12
    num_labels: int = 527
    position_grid: tuple[int, int] = (12, 101)

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ConfigError(f"AST hidden_size {self.hidden_size} is not a multiple of num_heads {self.num_heads}")
        if not 1 <= self.frequency_stride <= self.patch_size or not 1 <= self.time_stride <= self.patch_size:
            raise ConfigError(f"AST strides must be in [1, {self.patch_size}], got "
                              f"{self.frequency_stride}, {self.time_stride}")

    def grid(self, frames: int) -> tuple[int, int]:
        """(freq, time) patch grid of a [frames, num_mel_bins] input at the current strides."""
        if frames < self.patch_size:
            raise ConfigError(f"AST needs at least {self.patch_size} frames, got {frames}")
        return ((self.num_mel_bins - self.patch_size) // self.frequency_stride + 1,
                (frames - self.patch_size) // self.time_stride + 1)

    def with_strides(self, frequency_stride: int, time_stride: int) -> AstConfig:
        return replace(self, frequency_stride=frequency_stride, time_stride=time_stride)

    @classmethod
    def from_hf(cls, hf: dict[str, Any]) -> AstConfig:
        """From a Hugging Face `ASTConfig` dict (config.json); rejects what our port does not implement."""
        if hf.get("hidden_act", "gelu") != "gelu" or not hf.get("qkv_bias", True):
            raise ModelError(f"AST with hidden_act={hf.get('hidden_act')!r}, qkv_bias={hf.get('qkv_bias')} "
                             "is not supported (only the published gelu + qkv-bias layout)")
        hidden, heads = hf.get("hidden_size", 768), hf.get("num_attention_heads", 12)
        if hf.get("head_dim") not in (None, hidden // heads):
            raise ModelError(f"AST head_dim {hf['head_dim']} != hidden_size / heads; not supported")
        base = cls(hidden_size=hidden, num_layers=hf.get("num_hidden_layers", 12), num_heads=heads,
                   intermediate_size=hf.get("intermediate_size", 3072), patch_size=hf.get("patch_size", 16),
                   frequency_stride=hf.get("frequency_stride", 10), time_stride=hf.get("time_stride", 10),
                   num_mel_bins=hf.get("num_mel_bins", 128), max_length=hf.get("max_length", 1024),
                   layer_norm_eps=hf.get("layer_norm_eps", 1e-12), num_labels=len(hf.get("id2label", {})) or 2)
        return replace(base, position_grid=base.grid(base.max_length))


def features(waveform: np.ndarray, max_length: int = 1024, num_mel_bins: int = 128) -> np.ndarray:
    """16 kHz float audio -> AST's normalised input [max_length, num_mel_bins] (Kaldi fbank with a Hann window,
    zero-padded or cut to max_length, as Hugging Face's ASTFeatureExtractor)."""
    mel = fbank(np.asarray(waveform, np.float32), FbankConfig(num_mel_bins=num_mel_bins, povey_exponent=1.0))
    mel = np.pad(mel, ((0, max(0, max_length - len(mel))), (0, 0)))[:max_length]
    return ((mel - AUDIOSET_MEAN) / (2 * AUDIOSET_STD)).astype(np.float32)


def resize_positions(positions: jax.Array, old_grid: tuple[int, int], new_grid: tuple[int, int]) -> jax.Array:
    """[2 + F*T, H] position embeddings -> [2 + F'*T', H]: the two token rows kept, the patch rows resized as a
    (F, T) image, bilinearly (half-pixel centres, as AST's own interpolation for other strides/lengths)."""
    if tuple(old_grid) == tuple(new_grid):
        return positions
    tokens, patches = positions[:2], positions[2:].reshape(*old_grid, -1)
    resized = jax.image.resize(patches, (*new_grid, patches.shape[-1]), method="bilinear", antialias=False)
    return jnp.concatenate([tokens, resized.reshape(-1, patches.shape[-1])])


def patch_embed(params: Params, config: AstConfig, spec: jax.Array) -> jax.Array:
    """[B, frames, mel] -> [B, F*T, H] patch embeddings, frequency-major (patch (f, t) at row f*T + t)."""
    x = jnp.swapaxes(spec, 1, 2)[:, None]  # [B, 1, mel, frames]
    y = jax.lax.conv_general_dilated(x, params["kernel"], (config.frequency_stride, config.time_stride), "VALID",
                                     dimension_numbers=("NCHW", "OIHW", "NCHW"), precision=_HIGHEST)
    y = y + params["bias"][None, :, None, None]
    return y.reshape(y.shape[0], y.shape[1], -1).transpose(0, 2, 1)


def _layer_norm(p: Params, x: jax.Array, eps: float) -> jax.Array:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + eps) * p["scale"] + p["bias"]


def _dense(p: Params, x: jax.Array) -> jax.Array:
    return jnp.matmul(x, p["kernel"], precision=_HIGHEST) + p["bias"]


def _attention(p: Params, x: jax.Array, heads: int) -> jax.Array:
    batch, tokens, hidden = x.shape
    split = lambda t: t.reshape(batch, tokens, heads, hidden // heads).transpose(0, 2, 1, 3)  # noqa: E731
    q, k, v = split(_dense(p["query"], x)), split(_dense(p["key"], x)), split(_dense(p["value"], x))
    weights = jax.nn.softmax(jnp.matmul(q, k.swapaxes(-1, -2), precision=_HIGHEST) * (hidden // heads) ** -0.5)
    context = jnp.matmul(weights, v, precision=_HIGHEST).transpose(0, 2, 1, 3).reshape(batch, tokens, hidden)
    return _dense(p["out"], context)


def ast(params: Params, config: AstConfig, spec: jax.Array) -> tuple[jax.Array, jax.Array]:
    """[B, frames, num_mel_bins] normalised log-mel -> (logits [B, labels], pooled embedding [B, H])."""
    e = params["embed"]
    patches = patch_embed(e, config, spec)
    batch, hidden = patches.shape[0], patches.shape[-1]
    tokens = jnp.broadcast_to(jnp.stack([e["cls"], e["distillation"]]), (batch, 2, hidden))
    positions = resize_positions(e["positions"], config.position_grid, config.grid(spec.shape[1]))
    x = jnp.concatenate([tokens, patches], axis=1) + positions
    eps = config.layer_norm_eps
    for i in range(config.num_layers):
        p = params[f"layer{i}"]
        x = x + _attention(p, _layer_norm(p["ln1"], x, eps), config.num_heads)
        x = x + _dense(p["fc2"], jax.nn.gelu(_dense(p["fc1"], _layer_norm(p["ln2"], x, eps)), approximate=False))
    x = _layer_norm(params["final_ln"], x, eps)
    pooled = (x[:, 0] + x[:, 1]) / 2
    return _dense(params["head"]["dense"], _layer_norm(params["head"]["ln"], pooled, eps)), pooled


# ours -> (transformers 4.x name, transformers 5.x name); "{i}" is the layer index. Linear weights are [out, in].
_PREFIX = "audio_spectrogram_transformer."
_EMBED = {
    "embed/cls": "embeddings.cls_token",
    "embed/distillation": "embeddings.distillation_token",
    "embed/positions": "embeddings.position_embeddings",
    "embed/kernel": "embeddings.patch_embeddings.projection.weight",
    "embed/bias": "embeddings.patch_embeddings.projection.bias",
    "final_ln/scale": "layernorm.weight",
    "final_ln/bias": "layernorm.bias",
}
_LAYER = {  # ours: (v4 suffix, v5 suffix) under encoder.layer.{i}. / layers.{i}.
    "query": ("attention.attention.query", "attention.q_proj"),
    "key": ("attention.attention.key", "attention.k_proj"),
    "value": ("attention.attention.value", "attention.v_proj"),
    "out": ("attention.output.dense", "attention.o_proj"),
    "fc1": ("intermediate.dense", "mlp.fc1"),
    "fc2": ("output.dense", "mlp.fc2"),
    "ln1": ("layernorm_before", "layernorm_before"),
    "ln2": ("layernorm_after", "layernorm_after"),
}
_HEAD = {"head/ln/scale": "classifier.layernorm.weight", "head/ln/bias": "classifier.layernorm.bias",
         "head/dense/kernel": "classifier.dense.weight", "head/dense/bias": "classifier.dense.bias"}


def names(num_layers: int, layout: int) -> dict[str, str]:
    """ours -> upstream name for one Hugging Face layout (4 or 5)."""
    table = {ours: _PREFIX + theirs for ours, theirs in _EMBED.items()} | dict(_HEAD)
    for i in range(num_layers):
        block = f"{_PREFIX}encoder.layer.{i}." if layout == 4 else f"{_PREFIX}layers.{i}."
        for ours, (v4, v5) in _LAYER.items():
            leaf = ("scale", "bias") if ours.startswith("ln") else ("kernel", "bias")
            for mine, theirs in zip(leaf, ("weight", "bias")):
                table[f"layer{i}/{ours}/{mine}"] = f"{block}{v4 if layout == 4 else v5}.{theirs}"
    return table


def convert_state_dict(state: dict[str, np.ndarray], config: AstConfig) -> dict[str, np.ndarray]:
    """Hugging Face `ASTForAudioClassification` state dict -> our flat parameters; fails on any gap or leftover."""
    layout = 5 if any(".layers." in k for k in state) else 4
    table = names(config.num_layers, layout)
    missing, unused = set(table.values()) - state.keys(), state.keys() - set(table.values())
    if missing or unused:
        raise ModelError(f"not an ASTForAudioClassification state dict (transformers {layout}.x layout): missing "
                         f"{sorted(missing)[:5]}..., unused {sorted(unused)[:5]}")
    flat = {}
    for ours, theirs in table.items():
        value = np.asarray(state[theirs], np.float32)
        if ours.endswith("kernel") and ours != "embed/kernel":
            value = value.T  # torch Linear [out, in] -> [in, out]
        flat[ours] = value.reshape(-1) if ours in ("embed/cls", "embed/distillation") else value
    flat["embed/positions"] = flat["embed/positions"][0]
    hidden = config.hidden_size
    expected = {"embed/positions": (2 + config.position_grid[0] * config.position_grid[1], hidden),
                "embed/kernel": (hidden, 1, config.patch_size, config.patch_size),
                "head/dense/kernel": (hidden, config.num_labels),
                "layer0/fc1/kernel": (hidden, config.intermediate_size)}
    for ours, shape in expected.items():
        if flat[ours].shape != shape:
            raise ModelError(f"AST tensor {table[ours]} has shape {flat[ours].shape}, config says {shape}")
    return flat


def read_checkpoint(folder: Path) -> tuple[AstConfig, dict[str, np.ndarray], list[str]]:
    """config.json + model.safetensors (or pytorch_model.bin) of a Hugging Face AST -> (config, flat params, labels)."""
    from nodes.vad.convert import read_safetensors

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise ModelError(f"no config.json in {folder}: point at a Hugging Face ASTForAudioClassification folder")
    hf = json.loads((folder / "config.json").read_text())
    config = AstConfig.from_hf(hf)
    if (folder / "model.safetensors").is_file():
        state = read_safetensors(folder / "model.safetensors")
    elif (folder / "pytorch_model.bin").is_file():
        import torch  # the convert extra

        state = {k: v.float().numpy() for k, v in torch.load(folder / "pytorch_model.bin", map_location="cpu",
                                                            weights_only=True).items()}
    else:
        raise ModelError(f"no model.safetensors or pytorch_model.bin in {folder}")
    labels = [hf["id2label"][str(i)] for i in range(len(hf["id2label"]))] if "id2label" in hf else []
    return config, convert_state_dict(state, config), labels


class Ast:
    """AST scores and pooled embeddings for batches of normalised log-mel inputs, jitted per input shape."""

    def __init__(self, params: Params, config: AstConfig, class_names: list[str]) -> None:
        self.config = config
        self.class_names = class_names
        self._params = jax.device_put(params)
        self._run = jax.jit(partial(ast, config=config))

    def __call__(self, spec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[B, frames, num_mel_bins] -> (sigmoid scores [B, labels], embeddings [B, H]) as float32 NumPy."""
        x = np.asarray(spec, np.float32)
        if x.ndim != 3 or x.shape[2] != self.config.num_mel_bins:
            raise ModelError(f"AST takes [batch, frames, {self.config.num_mel_bins}] inputs, got {x.shape}")
        logits, pooled = self._run(self._params, spec=x)
        return np.asarray(jax.nn.sigmoid(logits)), np.asarray(pooled)


def load_ast(folder: Path | str, frequency_stride: int | None = None, time_stride: int | None = None) -> Ast:
    """An AST from a Hugging Face checkpoint folder, optionally at other strides than it was trained with."""
    from stream.models import unflatten

    config, flat, labels = read_checkpoint(Path(folder))
    if frequency_stride or time_stride:
        config = config.with_strides(frequency_stride or config.frequency_stride, time_stride or config.time_stride)
    return Ast(unflatten(flat), config, labels)
