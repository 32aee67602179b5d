"""Training the x-vector and d-vector baselines with AAM-softmax on a labelled folder of audio.

Data: every audio file under the folder; its speaker is the first-level subfolder it sits in, or, for files
directly in the folder, the first field of the file name (`19-198-0001.flac` -> `19`, LibriSpeech's naming).
Each step draws `batch` speakers uniformly (with replacement), one of their files and a random `crop_frames`
crop of its fbank, mean-subtracted per crop; a whole utterance is embedded with its own mean subtracted. A
streamable x-vector (`XVectorConfig.mean_frames` > 0) instead sees its causal sliding-mean input
(`xvector.normalise`) computed over the whole file, cropped as it is: the input a live stream would give it.

Loss: AAM-softmax (ArcFace): the target logit is s * cos(theta + m), the others s * cos(theta), theta being the
angle between the embedding and the class weight. The margin ramps up from 0 over `margin_warmup` steps, since a
full margin on a random network makes the target logit the smallest and slows the start.

Checkpoint (`.npz`): `meta` (JSON: model kind and sizes, training config, step, class names), `params/...`
(model and AAM head) and `opt/<i>` (optimiser state leaves), written every `checkpoint_every` steps and at the
end, atomically; training resumes from it exactly (the batch of step k depends only on seed and k).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nodes.capture.files import audio_files
from nodes.embedding import dvector, xvector
from nodes.embedding.train_config import NETWORKS, TrainConfig
from stream.errors import ConfigError, ModelError
from stream.files import save_npz
from stream.models import flatten, unflatten

FORMAT = 1


@dataclass(frozen=True)
class Architecture:
    """A trainable embedding network: its size config, random init, and batched `embed(params, feats, weights)`."""

    config: type
    init: Callable[[jax.Array, Any], dict]
    embed: Callable[..., jax.Array]


ARCHITECTURES = dict(zip(NETWORKS, (Architecture(xvector.XVectorConfig, xvector.init, xvector.embed),
                                     Architecture(dvector.DVectorConfig, dvector.init, dvector.embed))))


@dataclass(frozen=True)
class LabelledFile:
    path: Path
    speaker: str


def labelled_files(folder: Path) -> list[LabelledFile]:
    """Audio files under `folder` with their speaker (subfolder name, or first field of a top-level file's name)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"training data folder {folder} does not exist")
    files = []
    for path in audio_files([folder]):
        parts = path.relative_to(folder).parts
        speaker = parts[0] if len(parts) > 1 else path.stem.replace("_", "-").split("-")[0]
        files.append(LabelledFile(path, speaker))
    if len({f.speaker for f in files}) < 2:
        raise ConfigError(f"{folder} needs audio of at least 2 speakers (subfolders or SPEAKER-... file names)")
    return files


def aam_logits(
    embeddings: jax.Array, weights: jax.Array, labels: jax.Array, margin: jax.Array, scale: float
) -> jax.Array:
    """AAM-softmax logits [B, C]: s * cos(theta + m) for each row's label, s * cos(theta) elsewhere.

    Where theta + m would pass pi (cos no longer decreasing) the target logit becomes cos(theta) - m * sin(m),
    ArcFace's usual fallback, so the loss keeps pushing the embedding towards its class.
    """
    cos = (embeddings / jnp.linalg.norm(embeddings, axis=1, keepdims=True)) @ (
        weights / jnp.linalg.norm(weights, axis=0, keepdims=True)
    )
    cos = jnp.clip(cos, -1.0 + 1e-7, 1.0 - 1e-7)
    with_margin = cos * jnp.cos(margin) - jnp.sqrt(1.0 - cos**2) * jnp.sin(margin)
    with_margin = jnp.where(cos > jnp.cos(jnp.pi - margin), with_margin, cos - margin * jnp.sin(margin))
    target = jax.nn.one_hot(labels, cos.shape[1], dtype=bool)
    return scale * jnp.where(target, with_margin, cos)


def crop_batch(
    features: Sequence[np.ndarray], classes: Sequence[np.ndarray], cfg: TrainConfig, step: int, centre: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The batch of `step`: (crops [batch, crop_frames, F], mean-subtracted if `centre`, labels [batch]), a
    function of seed and step only.

    `classes[c]` lists the indices into `features` of class c's files.
    """
    rng = np.random.default_rng([cfg.seed, step])
    labels = rng.integers(len(classes), size=cfg.batch)
    crops = []
    for label in labels:
        feats = features[rng.choice(classes[label])]
        if len(feats) < cfg.crop_frames:
            feats = np.resize(feats, (cfg.crop_frames, feats.shape[1]))  # repeats the file from its start
        start = rng.integers(len(feats) - cfg.crop_frames + 1)
        crop = feats[start : start + cfg.crop_frames]
        crops.append(crop - crop.mean(axis=0) if centre else crop)
    return np.stack(crops).astype(np.float32), labels.astype(np.int32)


def optimiser(cfg: TrainConfig) -> optax.GradientTransformation:
    warmup = min(cfg.warmup, cfg.steps // 2)
    schedule = optax.warmup_cosine_decay_schedule(0.0, cfg.lr, warmup, cfg.steps, cfg.lr * 0.01)
    return optax.chain(optax.clip_by_global_norm(5.0), optax.adamw(schedule, weight_decay=cfg.weight_decay))


@dataclass
class TrainState:
    """Everything a checkpoint holds."""

    kind: str  # "xvector" | "dvector"
    model_config: Any  # XVectorConfig | DVectorConfig
    train_config: TrainConfig
    classes: list[str]  # class index -> speaker name
    params: dict  # {"model": ..., "head": {"w": [embed_dim, classes]}}
    opt_state: Any
    step: int


def new_state(kind: str, model_config: Any, train_config: TrainConfig, classes: list[str]) -> TrainState:
    """Random-initialised network and AAM head, fresh optimiser."""
    arch = architecture(kind)
    k_model, k_head = jax.random.split(jax.random.PRNGKey(train_config.seed))
    params = {
        "model": arch.init(k_model, model_config),
        "head": {"w": jax.random.normal(k_head, (model_config.embed_dim, len(classes))) * 0.01},
    }
    return TrainState(kind, model_config, train_config, classes, params, optimiser(train_config).init(params), 0)


def architecture(kind: str) -> Architecture:
    if kind not in ARCHITECTURES:
        raise ConfigError(f"unknown embedding network {kind!r}; choose one of: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[kind]


def make_step(state: TrainState) -> Callable[..., tuple[Any, Any, jax.Array, jax.Array]]:
    """A jitted `(params, opt_state, crops, labels, step) -> (params, opt_state, loss, accuracy)`."""
    arch, cfg = architecture(state.kind), state.train_config
    opt = optimiser(cfg)

    def loss_fn(params: dict, crops: jax.Array, labels: jax.Array, margin: jax.Array) -> tuple[jax.Array, jax.Array]:
        emb = arch.embed(params["model"], crops)
        logits = aam_logits(emb, params["head"]["w"], labels, margin, cfg.scale)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        return loss, jnp.mean(jnp.argmax(logits, axis=1) == labels)

    @jax.jit
    def step(
        params: dict, opt_state: Any, crops: jax.Array, labels: jax.Array, step: jax.Array
    ) -> tuple[Any, Any, jax.Array, jax.Array]:
        margin = cfg.margin * jnp.minimum(1.0, step / max(cfg.margin_warmup, 1))
        (loss, acc), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, crops, labels, margin)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, acc

    return step


def save_checkpoint(state: TrainState, path: Path) -> None:
    """Write the state to `path` (.npz) atomically."""
    meta = {
        "format": FORMAT,
        "kind": state.kind,
        "model_config": dataclasses.asdict(state.model_config),
        "train_config": dataclasses.asdict(state.train_config),
        "classes": state.classes,
        "step": state.step,
    }
    arrays = flatten(state.params, "params/")
    arrays.update({f"opt/{i}": np.asarray(leaf) for i, leaf in enumerate(jax.tree_util.tree_leaves(state.opt_state))})
    save_npz(path, meta, arrays)


def load_checkpoint(path: Path) -> TrainState:
    """Read a checkpoint written by `save_checkpoint` (a network to embed with, or a run to resume)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"embedding checkpoint {path} does not exist; train one with `stream train-embedding`")
    try:
        with np.load(path) as data:
            meta = json.loads(str(data["meta"]))
            arrays = {k: data[k] for k in data.files if k != "meta"}
        kind = meta["kind"]
        model_config = architecture(kind).config(**meta["model_config"])
        train_config = TrainConfig(**meta["train_config"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{path} is not a readable `stream train-embedding` checkpoint ({exc})") from exc
    if meta.get("format") != FORMAT:
        raise ModelError(f"{path} has checkpoint format {meta.get('format')!r}; this version reads {FORMAT}")
    params = unflatten({k.removeprefix("params/"): jnp.asarray(v) for k, v in arrays.items()
                        if k.startswith("params/")})
    state = TrainState(kind, model_config, train_config, list(meta["classes"]), params, None, int(meta["step"]))
    skeleton = optimiser(train_config).init(params)
    leaves = [jnp.asarray(arrays[f"opt/{i}"]) for i in range(len(jax.tree_util.tree_leaves(skeleton)))]
    state.opt_state = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(skeleton), leaves)
    return state


@functools.cache
def _jitted_embed(kind: str) -> Callable[..., jax.Array]:
    return jax.jit(architecture(kind).embed)


def embed_utterances(kind: str, model_config: Any, model_params: dict, features: Sequence[np.ndarray]) -> np.ndarray:
    """Whole-utterance embeddings [N, embed_dim] of fbank arrays [T_i, F] (each normalised here: mean-subtracted,
    or `xvector.normalise`d).

    x-vector: the utterance padded with zero weights to CAM++'s length buckets (100 * sqrt(2)^k frames), so the
    jitted network compiles once per bucket. d-vector: GE2E's partial windows in batches of 8 (the last batch padded
    with repeats), their unit vectors averaged.
    """
    from nodes.embedding.api import bucket_frames

    embed = _jitted_embed(kind)
    out = []
    for feats in features:
        if kind == "xvector":
            feats = xvector.normalise(feats, model_config)
        else:
            feats = (feats - feats.mean(axis=0)).astype(np.float32)
        if kind == "dvector":
            window = model_config.window
            starts = dvector.partial_starts(len(feats), window)
            length = min(len(feats), window)
            padded = np.resize(starts, -(-len(starts) // 8) * 8)  # batches of 8 partials: few shapes to compile
            windows = np.zeros((len(padded), window, feats.shape[1]), np.float32)
            for i, s in enumerate(padded):
                windows[i, :length] = feats[s : s + length]
            weights = np.zeros((len(padded), window), np.float32)
            weights[:, :length] = 1.0
            partials = np.asarray(embed(model_params, windows, weights))[: len(starts)]
            out.append((partials / np.linalg.norm(partials, axis=1, keepdims=True)).mean(axis=0))
        else:
            padded = bucket_frames(len(feats))
            batch = np.zeros((1, padded, feats.shape[1]), np.float32)
            batch[0, : len(feats)] = feats
            weights = (np.arange(padded) < len(feats)).astype(np.float32)[None]
            out.append(np.asarray(embed(model_params, batch, weights))[0])
    return np.stack(out)


def load_features(paths: Sequence[Path]) -> list[np.ndarray]:
    """Kaldi fbank [T, 80] of each file, decoded to 16 kHz mono, exactly as CAM++ gets it (`nodes.embedding.api`)."""
    from nodes.embedding.api import SAMPLE_RATE, check_features, waveform_fbank
    from nodes.embedding.files import load_audio

    out = []
    for path in paths:
        feats = waveform_fbank(load_audio(path), SAMPLE_RATE)
        check_features(feats, what=str(path))
        out.append(feats)
    return out


def train(state: TrainState, files: Sequence[LabelledFile], out: Path, progress: bool = True,
          until: int | None = None) -> list[float]:
    """Train `state` in place on `files` up to step `until` (default: all `train_config.steps`; a smaller value
    trains a chunk of the run, to `--resume` later), checkpointing to `out`; returns the losses of the steps run."""
    from tqdm import tqdm

    cfg = state.train_config
    speakers = sorted({f.speaker for f in files})
    if speakers != state.classes:
        raise ConfigError(
            f"the data has {len(speakers)} speakers but the checkpoint was trained on {len(state.classes)} "
            "different ones; resume on the same folder or start a new --out"
        )
    index = {name: i for i, name in enumerate(speakers)}
    classes = [np.array([i for i, f in enumerate(files) if index[f.speaker] == c]) for c in range(len(speakers))]
    features = load_features([f.path for f in files])
    streamable = state.kind == "xvector" and state.model_config.mean_frames > 0
    if streamable:
        features = [xvector.normalise(f, state.model_config) for f in features]
    step_fn = make_step(state)
    last = cfg.steps if until is None else min(until, cfg.steps)
    losses = []
    bar = tqdm(total=cfg.steps, initial=state.step, disable=not progress, unit="step", desc=f"train {state.kind}")
    with bar:
        while state.step < last:
            crops, labels = crop_batch(features, classes, cfg, state.step, centre=not streamable)
            state.params, state.opt_state, loss, acc = step_fn(state.params, state.opt_state, crops, labels, state.step)
            state.step += 1
            losses.append(float(loss))
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}", acc=f"{float(acc):.2f}")
            if state.step % cfg.checkpoint_every == 0 or state.step == last:
                save_checkpoint(state, out)
    return losses
