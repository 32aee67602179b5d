"""Upstream speaker-encoder checkpoints -> our parameter trees ("/"-joined flat dicts of float32 arrays).

Each converter walks the architecture and takes every tensor it needs by its upstream name, checking the shape;
afterwards any upstream tensor not taken (other than batch-norm step counters) is an error, and so is any name it
needs but cannot find. Batch-norm layers are folded to `scale = gamma / sqrt(var + eps)`, `shift = beta - mean *
scale` (eps 1e-5, PyTorch's default, used by both upstream models).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nodes.embedding.campplus import CampplusConfig
from nodes.embedding.ecapa import AURALIS, VOXCELEB, EcapaConfig
from stream.checkpoint import load_torch_checkpoint, state_dict
from stream.errors import ModelError
from stream.models import flatten

BN_EPS = 1e-5


class _Taker:
    """Hands out upstream tensors by name and remembers which were used, so leftovers can be reported."""

    def __init__(self, tensors: dict[str, np.ndarray], source: str) -> None:
        self.tensors, self.source, self.used = tensors, source, set[str]()

    def take(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        if name not in self.tensors:
            raise ModelError(f"{self.source}: missing tensor {name!r} (expected shape {shape}); wrong model or config")
        value = self.tensors[name]
        if tuple(value.shape) != tuple(shape):
            raise ModelError(f"{self.source}: tensor {name!r} has shape {tuple(value.shape)}, expected {shape}")
        self.used.add(name)
        return value.astype(np.float32)

    def bn(self, prefix: str, channels: int, affine: bool = True) -> dict[str, np.ndarray]:
        mean = self.take(f"{prefix}.running_mean", (channels,))
        var = self.take(f"{prefix}.running_var", (channels,))
        gamma = self.take(f"{prefix}.weight", (channels,)) if affine else np.ones(channels, np.float32)
        beta = self.take(f"{prefix}.bias", (channels,)) if affine else np.zeros(channels, np.float32)
        self.used.add(f"{prefix}.num_batches_tracked")
        scale = (gamma / np.sqrt(var.astype(np.float64) + BN_EPS)).astype(np.float32)
        return {"scale": scale, "shift": (beta - mean * scale).astype(np.float32)}

    def finish(self, tree: dict) -> dict[str, np.ndarray]:
        unused = sorted(k for k in self.tensors if k not in self.used and not k.endswith("num_batches_tracked"))
        if unused:
            raise ModelError(f"{self.source}: {len(unused)} upstream tensors have no place in our model, "
                             f"e.g. {unused[:5]}; the checkpoint does not match the configuration")
        return flatten(tree)


def campplus_tree(tensors: dict[str, np.ndarray], cfg: CampplusConfig = CampplusConfig(),
                  source: str = "CAM++ checkpoint") -> dict[str, np.ndarray]:
    """3D-Speaker `CAMPPlus` state dict -> our flat CAM++ parameters (see `nodes.embedding.campplus`)."""
    t = _Taker(tensors, source)
    c = cfg.head_channels

    def res(prefix: str, stride: int) -> dict:
        block = {
            "conv1": t.take(f"{prefix}.conv1.weight", (c, c, 3, 3)), "bn1": t.bn(f"{prefix}.bn1", c),
            "conv2": t.take(f"{prefix}.conv2.weight", (c, c, 3, 3)), "bn2": t.bn(f"{prefix}.bn2", c),
        }
        if stride != 1:
            block["shortcut"] = {"conv": t.take(f"{prefix}.shortcut.0.weight", (c, c, 1, 1)),
                                 "bn": t.bn(f"{prefix}.shortcut.1", c)}
        return block

    tree: dict = {"head": {
        "conv1": t.take("head.conv1.weight", (c, 1, 3, 3)), "bn1": t.bn("head.bn1", c),
        "res1": res("head.layer1.0", 2), "res2": res("head.layer1.1", 1),
        "res3": res("head.layer2.0", 2), "res4": res("head.layer2.1", 1),
        "conv2": t.take("head.conv2.weight", (c, c, 3, 3)), "bn2": t.bn("head.bn2", c),
    }}
    channels = cfg.init_channels
    tree["tdnn"] = {"w": t.take("xvector.tdnn.linear.weight", (channels, c * (cfg.feat_dim // 8), 5)),
                    "bn": t.bn("xvector.tdnn.nonlinear.batchnorm", channels)}
    bottleneck = cfg.bn_size * cfg.growth_rate
    for i, (num_layers, kernel, _dilation) in enumerate(cfg.blocks, start=1):
        block = {}
        for j in range(1, num_layers + 1):
            p = f"xvector.block{i}.tdnnd{j}"
            block[str(j)] = {
                "bn1": t.bn(f"{p}.nonlinear1.batchnorm", channels),
                "bottleneck": t.take(f"{p}.linear1.weight", (bottleneck, channels, 1)),
                "bn2": t.bn(f"{p}.nonlinear2.batchnorm", bottleneck),
                "local": t.take(f"{p}.cam_layer.linear_local.weight", (cfg.growth_rate, bottleneck, kernel)),
                "ctx1": {"w": t.take(f"{p}.cam_layer.linear1.weight", (bottleneck // 2, bottleneck, 1)),
                         "b": t.take(f"{p}.cam_layer.linear1.bias", (bottleneck // 2,))},
                "ctx2": {"w": t.take(f"{p}.cam_layer.linear2.weight", (cfg.growth_rate, bottleneck // 2, 1)),
                         "b": t.take(f"{p}.cam_layer.linear2.bias", (cfg.growth_rate,))},
            }
            channels += cfg.growth_rate
        tree[f"block{i}"] = block
        tree[f"transit{i}"] = {"bn": t.bn(f"xvector.transit{i}.nonlinear.batchnorm", channels),
                               "w": t.take(f"xvector.transit{i}.linear.weight", (channels // 2, channels, 1))}
        channels //= 2
    tree["out_bn"] = t.bn("xvector.out_nonlinear.batchnorm", channels)
    tree["dense"] = {"w": t.take("xvector.dense.linear.weight", (cfg.embedding_size, channels * 2, 1))[..., 0],
                     "bn": t.bn("xvector.dense.nonlinear.batchnorm", cfg.embedding_size, affine=False)}
    return t.finish(tree)


def campplus(path: Path) -> dict[str, np.ndarray]:
    """Registry converter for `campplus`: the 3D-Speaker checkpoint (a bare state dict) at `path`."""
    return campplus_tree(state_dict(load_torch_checkpoint(path)), source=str(path))


def ecapa_speechbrain_tree(tensors: dict[str, np.ndarray], cfg: EcapaConfig,
                           source: str = "ECAPA-TDNN checkpoint") -> dict[str, np.ndarray]:
    """SpeechBrain `ECAPA_TDNN` state dict (its own names) -> our flat ECAPA parameters for `cfg`."""
    t = _Taker(tensors, source)

    def conv(prefix: str, cout: int, cin: int, k: int) -> dict:
        return {"w": t.take(f"{prefix}.conv.weight", (cout, cin, k)), "b": t.take(f"{prefix}.conv.bias", (cout,))}

    def tdnn(prefix: str, cout: int, cin: int, k: int) -> dict:
        return {**conv(f"{prefix}.conv", cout, cin, k), "bn": t.bn(f"{prefix}.norm.norm", cout)}

    ch = cfg.channels
    tree: dict = {"block0": tdnn("blocks.0", ch[0], cfg.input_size, cfg.kernel_sizes[0])}
    for i in range(1, len(ch) - 1):
        p, c, width = f"blocks.{i}", ch[i], ch[i] // cfg.res2net_scale
        block = {
            "tdnn1": tdnn(f"{p}.tdnn1", c, ch[i - 1], 1),
            "res2net": {str(j): tdnn(f"{p}.res2net_block.blocks.{j}", width, width, cfg.kernel_sizes[i])
                        for j in range(cfg.res2net_scale - 1)},
            "tdnn2": tdnn(f"{p}.tdnn2", c, c, 1),
            "se": {"conv1": conv(f"{p}.se_block.conv1", cfg.se_channels, c, 1),
                   "conv2": conv(f"{p}.se_block.conv2", c, cfg.se_channels, 1)},
        }
        if ch[i - 1] != c:
            block["shortcut"] = conv(f"{p}.shortcut", c, ch[i - 1], 1)
        tree[f"block{i}"] = block
    tree["mfa"] = tdnn("mfa", ch[-1], sum(ch[1:-1]), cfg.kernel_sizes[-1])
    attn_in = ch[-1] * (3 if cfg.global_context else 1)
    tree["asp"] = {"tdnn": tdnn("asp.tdnn", cfg.attention_channels, attn_in, 1),
                   "conv": conv("asp.conv", ch[-1], cfg.attention_channels, 1)}
    tree["asp_bn"] = t.bn("asp_bn.norm", 2 * ch[-1])
    fc = conv("fc", cfg.lin_neurons, 2 * ch[-1], 1)
    tree["fc"] = {"w": fc["w"][..., 0], "b": fc["b"]}
    return t.finish(tree)


def ecapa_speechbrain(path: Path, cfg: EcapaConfig = VOXCELEB) -> dict[str, np.ndarray]:
    """A SpeechBrain `embedding_model.ckpt` (a bare `ECAPA_TDNN` state dict) -> our ECAPA parameters.

    Pass the `cfg` of the recipe that trained it (SpeechBrain's hyperparams.yaml `embedding_model` block);
    any mismatch in channels, kernels or block count is reported as missing/unused tensors or wrong shapes.
    """
    return ecapa_speechbrain_tree(state_dict(load_torch_checkpoint(path)), cfg, source=str(path))


def ecapa_auralis(path: Path) -> dict[str, np.ndarray]:
    """Registry converter for `ecapa-speechbrain-layout`: SpeechBrain names under `ecapa_state_dict`."""
    tensors = state_dict(load_torch_checkpoint(path), key="ecapa_state_dict")
    return ecapa_speechbrain_tree(tensors, AURALIS, source=str(path))
