"""Fine-tuning segmentation-3.0 with the permutation-invariant powerset loss (`stream train-segmentation`).

Each step: `batch` augmented chunks of `chunk_s` seconds (`chunks.training_batch`), the model's powerset
log-probabilities, `powerset.permutation_invariant_loss`, one Adam step (learning rate warmed up over the first
10 % of steps, then cosine-decayed to a tenth; gradients clipped at global norm 1). Starts from the shipped
weights (or `--init` weights).

Checkpoint (`.npz`, atomic, every `checkpoint_every` steps and at the end): `meta` (JSON: format, train config,
step, data folder), `params/...`, `opt/<i>` (Adam state leaves). Re-running the same command resumes from it
exactly (a step's batch depends only on the seed and the step), including after kill -9. The weights file
(`weights.save_weights`) is written at the end.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nodes.segmentation.chunks import Conversation, training_batch
from nodes.segmentation.model import SAMPLE_RATE, Params, pyannet
from nodes.segmentation.powerset import permutation_invariant_loss
from nodes.segmentation.train_config import TrainConfig
from stream.errors import ModelError
from stream.files import save_npz
from stream.models import flatten, unflatten

FORMAT = 1
PROGRESS_S = 30.0  # s between progress lines when stderr is not a terminal


@dataclass
class TrainState:
    """Everything a checkpoint holds."""

    config: TrainConfig
    data: str  # the training folder, so a resume on other data is refused
    params: Params
    opt_state: Any
    step: int = 0


def optimiser(cfg: TrainConfig) -> optax.GradientTransformation:
    warmup = max(1, cfg.steps // 10)
    schedule = optax.warmup_cosine_decay_schedule(0.0, cfg.lr, warmup, max(cfg.steps, warmup + 1), cfg.lr * 0.1)
    return optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))


def new_state(cfg: TrainConfig, data: Path, params: Params) -> TrainState:
    params = jax.tree_util.tree_map(jnp.asarray, params)
    return TrainState(cfg, str(Path(data).resolve()), params, optimiser(cfg).init(params))


@functools.cache
def _step_fn(cfg: TrainConfig) -> Callable[..., tuple[Params, Any, jax.Array]]:
    opt = optimiser(cfg)

    def loss_fn(params: Params, audio: jax.Array, targets: jax.Array) -> jax.Array:
        return permutation_invariant_loss(pyannet(params, audio), targets)

    @jax.jit
    def step(params: Params, opt_state: Any, audio: jax.Array, targets: jax.Array) -> tuple[Params, Any, jax.Array]:
        loss, grads = jax.value_and_grad(loss_fn)(params, audio, targets)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


@jax.jit
def batch_loss(params: Params, audio: jax.Array, targets: jax.Array) -> jax.Array:
    """The loss of `params` on a batch, without training (a fixed batch measures progress)."""
    return permutation_invariant_loss(pyannet(params, audio), targets)


def save_checkpoint(state: TrainState, path: Path) -> None:
    meta = {"format": FORMAT, "config": state.config.to_json(), "data": state.data, "step": state.step}
    arrays = flatten(state.params, "params/")
    arrays.update({f"opt/{i}": np.asarray(leaf) for i, leaf in enumerate(jax.tree_util.tree_leaves(state.opt_state))})
    save_npz(path, meta, arrays)


def load_checkpoint(path: Path) -> TrainState:
    try:
        with np.load(path) as data:
            meta = json.loads(str(data["meta"]))
            arrays = {k: data[k] for k in data.files if k != "meta"}
        cfg = TrainConfig.from_json(meta["config"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{path} is not a readable `stream train-segmentation` checkpoint ({exc}); delete it to "
                         "start over") from exc
    if meta.get("format") != FORMAT:
        raise ModelError(f"{path} has checkpoint format {meta.get('format')!r}; this version reads {FORMAT}")
    params = unflatten({k.removeprefix("params/"): jnp.asarray(v) for k, v in arrays.items()
                        if k.startswith("params/")})
    skeleton = optimiser(cfg).init(params)
    leaves = [jnp.asarray(arrays[f"opt/{i}"]) for i in range(len(jax.tree_util.tree_leaves(skeleton)))]
    opt_state = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(skeleton), leaves)
    return TrainState(cfg, meta["data"], params, opt_state, int(meta["step"]))


def train(state: TrainState, conversations: list[Conversation], checkpoint: Path, until: int | None = None,
          progress: bool | None = None) -> list[float]:
    """Train `state` in place up to step `until` (default: all steps), checkpointing to `checkpoint`; returns the
    losses of the steps run. Progress: a bar on a terminal, else a line every 30 s on stderr."""
    from tqdm import tqdm

    cfg = state.config
    step_fn = _step_fn(cfg)
    last = cfg.steps if until is None else min(until, cfg.steps)
    tty = sys.stderr.isatty() if progress is None else progress
    losses: list[float] = []
    started = shown = time.monotonic()
    first = state.step
    with tqdm(total=cfg.steps, initial=state.step, disable=not tty, unit="step", desc="train segmentation") as bar:
        while state.step < last:
            audio, targets = training_batch(conversations, cfg.batch, round(cfg.chunk_s * SAMPLE_RATE), cfg.augmentation, cfg.seed,
                                            state.step)
            state.params, state.opt_state, loss = step_fn(state.params, state.opt_state, audio, targets)
            state.step += 1
            losses.append(float(loss))
            recent = float(np.mean(losses[-20:]))
            bar.update(1)
            bar.set_postfix(loss=f"{recent:.4f}")
            now = time.monotonic()
            if not tty and (now - shown >= PROGRESS_S or state.step == last):
                rate = (now - started) / (state.step - first)
                print(f"step {state.step}/{cfg.steps}  loss {recent:.4f} (mean of last {min(20, len(losses))})  "
                      f"{rate:.2f} s/step  eta {(last - state.step) * rate / 60:.1f} min", file=sys.stderr, flush=True)
                shown = now
            if state.step % cfg.checkpoint_every == 0 or state.step == last:
                save_checkpoint(state, checkpoint)
    return losses
