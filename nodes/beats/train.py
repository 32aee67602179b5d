"""Fine-tuning BeatNet's CRNN on music with known beats: targets, augmentation, loss, the training loop.

Why: BeatNet's released weights (trained on Ballroom, GTZAN, Rock Corpus, ...) lock to the eighth-note motion of
chorales and rubato piano (double tempo) and lose phase at ritardandi; the decoder is not the gap (RESULTS.md,
"Music: beats"). Training follows madmom's online beat RNN and BeatNet in kind: a causal recurrent network over
log-filtered spectrogram frames, per-frame beat targets, random crops; plus what the TCN trackers (Böck & Davies
2019/2020) and BEAST add: targets widened to the neighbouring frames (weight `widen`), positive frames weighted,
tempo augmentation by resampling the audio.

Targets per frame (50 frames/s): beat = 1 at the frame nearest each beat, `widen` at the two beside it; downbeat
likewise for the first beat of a bar where the bar position is known. Loss, per frame of a crop (the first
`warmup` frames of a crop, where the LSTM starts cold, not counted): binary cross-entropy of P(beat) + P(downbeat)
against the beat target (positive frames weighted `beat_weight`), plus `downbeat_weight` times the cross-entropy of
P(downbeat) / (P(beat) + P(downbeat)) against the downbeat target on beat frames of tracks with bar positions.
The network stays BeatNet's (`beatnet.crnn`): the live node streams it exactly as it streams BeatNet's weights.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from functools import cache
from pathlib import Path

import numpy as np

from nodes.beats.beatnet import HOP, clip_features, crnn, init_lstm_state
from nodes.beats.decoder import BeatDecoder, DecoderConfig
from nodes.beats.onset import RATE
from stream.files import atomic_write, save_npz

FPS = RATE / HOP  # 50 frames per second


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 900  # optimiser steps in all
    batch: int = 8  # crops per step
    crop_frames: int = 500  # frames per crop (10 s): enough context to tell the beat from its subdivisions
    warmup: int = 25  # frames at a crop's start not scored (the LSTM starts from zeros there)
    lr: float = 5e-4  # Adam's peak step size, cosine-decayed to 0 at `steps`
    clip: float = 1.0  # global gradient-norm clip
    beat_weight: float = 3.0  # [1, 20] weight of frames with a beat target > 0 (beats are ~1 frame in 25)
    downbeat_weight: float = 0.5  # [0, 2] weight of the downbeat-vs-beat term
    widen: float = 0.5  # [0, 1] target of the frames beside a beat
    eval_every: int = 100  # steps between validations (beat F-measure through the decoder)
    patience: int = 4  # validations without a better F before training stops
    seed: int = 0


@dataclass(frozen=True)
class Example:
    """One training item: features of (augmented) audio and its frame targets."""

    features: np.ndarray  # [n, 272] float32
    beat: np.ndarray  # [n] float32 in [0, 1]
    downbeat: np.ndarray  # [n] float32 in [0, 1]
    bars_known: bool  # the reference has bar positions (else the downbeat term is not scored)


def targets(times: np.ndarray, positions: np.ndarray, frames: int, widen: float) -> tuple[np.ndarray, np.ndarray]:
    """(beat, downbeat) frame targets for reference beats at `times` s (positions: beat in bar, 0 = unknown)."""
    out = np.zeros((2, frames), np.float32)
    for row, sel in ((0, np.ones(len(times), bool)), (1, positions == 1)):
        idx = np.round(np.asarray(times)[sel] * FPS).astype(int)
        for shift, value in ((-1, widen), (1, widen), (0, 1.0)):
            k = idx + shift
            k = k[(k >= 0) & (k < frames)]
            out[row, k] = np.maximum(out[row, k], value)
    return out[0], out[1]


def augment(x: np.ndarray, rng: np.random.Generator, stretch: float) -> np.ndarray:
    """Audio played `stretch` times faster (resampled: pitch moves with it), then random gain, EQ tilt, a short
    synthetic room and noise; what a live microphone or a different recording does to the spectrum."""
    import soxr
    from scipy.signal import fftconvolve, lfilter

    y = soxr.resample(x, RATE * stretch, RATE).astype(np.float32) if stretch != 1.0 else x.copy()
    if rng.random() < 0.5:  # first-order tilt: brighter or duller
        a = rng.uniform(-0.6, 0.6)
        y = lfilter([1.0, -a], [1.0], y).astype(np.float32)
    if rng.random() < 0.4:  # exponentially decaying noise as a room impulse response, RT60 0.2-1 s
        rt60 = rng.uniform(0.2, 1.0)
        n = int(rt60 * RATE)
        ir = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)
        ir[0] = 1.0 / rng.uniform(0.3, 1.0)
        wet = fftconvolve(y, ir)[:len(y)]
        y = (wet / (np.abs(wet).max() + 1e-9) * np.abs(y).max()).astype(np.float32)
    if rng.random() < 0.5:  # white noise at 15-40 dB SNR
        snr = rng.uniform(15, 40)
        y = y + rng.standard_normal(len(y)).astype(np.float32) * np.sqrt(np.mean(y ** 2) / 10 ** (snr / 10))
    gain = 10 ** (rng.uniform(-18, 3) / 20) / max(float(np.abs(y).max()), 1e-6)
    return (y * gain).astype(np.float32)


def make_example(x: np.ndarray, times: np.ndarray, positions: np.ndarray, widen: float,
                 rng: np.random.Generator | None = None, stretch: float = 1.0) -> Example:
    """Features and targets of `x` (22.05 kHz), augmented when `rng` is given (beats move with the stretch)."""
    y = augment(x, rng, stretch) if rng is not None else x
    feats = clip_features(y)
    beat, down = targets(np.asarray(times) / stretch, positions, len(feats), widen)
    return Example(feats.astype(np.float16), beat, down, bool((positions > 0).any()))


def loss_fn(params, x, beat, down, known, config: TrainConfig):
    """Mean weighted loss of a batch: x [B, T, 272], beat/down [B, T], known [B]."""
    import jax
    import jax.numpy as jnp

    probs, _ = jax.vmap(lambda xi: crnn(params, xi, init_lstm_state()))(x)
    eps = 1e-6
    q = jnp.clip(probs[..., 0] + probs[..., 1], eps, 1 - eps)
    scored = (jnp.arange(x.shape[1]) >= config.warmup)[None, :]
    weight = jnp.where(beat > 0, config.beat_weight, 1.0) * scored
    bce = -(beat * jnp.log(q) + (1 - beat) * jnp.log(1 - q))
    beat_loss = (weight * bce).sum() / weight.sum()
    r = jnp.clip(probs[..., 1] / q, eps, 1 - eps)
    target = jnp.where(beat > 0, down / jnp.maximum(beat, eps), 0.0)
    dmask = (beat > 0) * known[:, None] * scored
    dloss = (dmask * -(target * jnp.log(r) + (1 - target) * jnp.log(1 - r))).sum() / jnp.maximum(dmask.sum(), 1)
    return beat_loss + config.downbeat_weight * dloss


def crop_batch(examples: Sequence[Example], rng: np.random.Generator, config: TrainConfig):
    """`batch` random crops of `crop_frames` (shorter examples zero-padded, padding scored as no beat)."""
    t = config.crop_frames
    x = np.zeros((config.batch, t, 272), np.float32)
    beat = np.zeros((config.batch, t), np.float32)
    down = np.zeros((config.batch, t), np.float32)
    known = np.zeros(config.batch, np.float32)
    for b, i in enumerate(rng.integers(len(examples), size=config.batch)):
        e = examples[i]
        start = int(rng.integers(max(1, len(e.beat) - t + 1)))
        n = min(t, len(e.beat) - start)
        x[b, :n], beat[b, :n], down[b, :n] = e.features[start:start + n], e.beat[start:start + n], \
            e.downbeat[start:start + n]
        known[b] = e.bars_known
    return x, beat, down, known


def activations(params, features: np.ndarray) -> np.ndarray:
    """[n, 2] (beat, downbeat) activations of a whole clip, the LSTM run from zeros as in a new stream (lengths
    padded to a multiple of 1024 frames, so a set of clips compiles a few shapes; the model is causal)."""
    import jax.numpy as jnp

    n = len(features)
    size = -(-n // 1024) * 1024
    padded = np.zeros((size, features.shape[1]), np.float32)
    padded[:n] = features
    out, _ = _jit_crnn()(params, jnp.asarray(padded), init_lstm_state())
    return np.asarray(out)[:n, :2]


@cache
def _jit_crnn():
    import jax

    return jax.jit(crnn)


def decode(activation: np.ndarray, offset_s: float, config: DecoderConfig | None = None) -> np.ndarray:
    """Beat times (s) the live tracker would emit from these activations (its decoder, the same offset)."""
    beats = BeatDecoder(config or DecoderConfig(), FPS).step(activation.sum(axis=1))
    times = np.asarray([(b.frame + b.ahead) / FPS + offset_s for b in beats])
    return times[times >= 0]


def validate(params, items: Sequence[tuple[np.ndarray, np.ndarray]], offset_s: float) -> float:
    """Mean beat F-measure (mir_eval, first 5 s not scored) over (features, reference times) items."""
    from nodes.beats.evaluate import score

    return float(np.mean([score(ref, decode(activations(params, f), offset_s)).f_measure for f, ref in items]))


def save(path: Path, params: dict, opt_state, meta: dict) -> None:
    """Checkpoint: flat params, the optimiser state's leaves and JSON meta (config, step, best F, rng state)."""
    import jax

    from stream.models import flatten

    leaves = jax.tree_util.tree_leaves(opt_state)
    arrays = {f"params/{k}": v for k, v in flatten(jax.tree_util.tree_map(np.asarray, params)).items()}
    arrays.update({f"opt/{i:04d}": np.asarray(v) for i, v in enumerate(leaves)})
    save_npz(path, meta, arrays)


def load(path: Path, opt_template=None) -> tuple[dict, object, dict]:
    """(params, optimiser state shaped like `opt_template` or None without one, meta) of a checkpoint."""
    import jax
    import jax.numpy as jnp

    from stream.models import unflatten

    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
        params = unflatten({k[len("params/"):]: data[k] for k in data.files if k.startswith("params/")})
        leaves = [jnp.asarray(data[k]) for k in sorted(k for k in data.files if k.startswith("opt/"))]
    if opt_template is None:
        return params, None, meta
    return params, jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(opt_template), leaves), meta


@cache
def _optimiser(config: TrainConfig):
    """(Adam with gradient clipping, its jitted step): one compilation per configuration and process."""
    import jax
    import optax

    opt = optax.chain(optax.clip_by_global_norm(config.clip),
                      optax.adam(optax.cosine_decay_schedule(config.lr, config.steps)))

    @jax.jit
    def step(params, opt_state, x, beat, down, known):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, beat, down, known, config)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return opt, step


def _save_params(path: Path, params: dict) -> None:
    """The best weights so far, written atomically: a run killed while writing them keeps the previous best."""
    import jax

    from stream.models import flatten

    with atomic_write(path) as f:
        np.savez(f, **flatten(jax.tree_util.tree_map(np.asarray, params)))


def train(params: dict, examples: Sequence[Example], held_out: Sequence[tuple[np.ndarray, np.ndarray]],
          config: TrainConfig, checkpoint: Path, offset_s: float, until: int | None = None,
          log: Callable[[str], None] = print) -> tuple[dict, dict]:
    """Adam on random crops; every `eval_every` steps the held-out F-measure, keeping the best weights
    (`checkpoint` with `.best` before the suffix) and stopping after `patience` validations without a gain.
    Resumes from `checkpoint` when it exists (same data: the batches depend only on the seed and the step);
    `until` stops early at that step, to resume later. Returns (best params, meta)."""
    import jax
    import jax.numpy as jnp

    from stream.models import unflatten

    opt, step = _optimiser(replace(config, eval_every=0, patience=0, seed=0))  # what the step depends on
    params = jax.tree_util.tree_map(jnp.asarray, params)
    opt_state = opt.init(params)
    best_path = checkpoint.with_name(checkpoint.stem + ".best.npz")
    meta = {"config": asdict(config), "step": 0, "best_f": -1.0, "best_step": 0, "history": []}
    if checkpoint.is_file():
        params, opt_state, meta = load(checkpoint, opt_state)
        params = jax.tree_util.tree_map(jnp.asarray, params)
        log(f"resumed at step {meta['step']} (best F {meta['best_f']:.3f} at {meta['best_step']})")
    if meta["best_f"] < 0 and held_out:
        meta["best_f"] = validate(params, held_out, offset_s)
        meta["history"].append([0, None, meta["best_f"]])
        _save_params(best_path, params)
        log(f"step 0: held-out F {meta['best_f']:.3f}")

    started, losses = time.perf_counter(), []
    while meta["step"] < min(config.steps, until or config.steps):
        rng = np.random.default_rng([config.seed, meta["step"]])
        params, opt_state, loss = step(params, opt_state, *map(jnp.asarray, crop_batch(examples, rng, config)))
        meta["step"] += 1
        losses.append(float(loss))
        if meta["step"] % config.eval_every == 0 or meta["step"] == config.steps:
            mean_loss = float(np.mean(losses))
            losses = []
            f = validate(params, held_out, offset_s) if held_out else float("nan")
            meta["history"].append([meta["step"], mean_loss, f])
            if f > meta["best_f"]:
                meta["best_f"], meta["best_step"] = f, meta["step"]
                _save_params(best_path, params)
            save(checkpoint, params, opt_state, meta)
            log(f"step {meta['step']}/{config.steps}: loss {mean_loss:.4f}, held-out F {f:.3f} "
                f"(best {meta['best_f']:.3f} at {meta['best_step']}), {time.perf_counter() - started:.0f} s")
            if held_out and (meta["step"] - meta["best_step"]) >= config.patience * config.eval_every:
                log("no gain on the held-out slice: stopping")
                break
    if not best_path.is_file():
        _save_params(best_path, params)
    with np.load(best_path) as data:
        best = unflatten({k: data[k] for k in data.files})
    return best, meta
