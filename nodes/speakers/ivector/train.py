"""Training the i-vector extractor (`stream train-ivector`): UBM by EM with splitting, T by EM, then LDA.

Every EM iteration ends with an atomic checkpoint, so a killed run (even by SIGKILL) loses at most one iteration:
`train` continues from whatever stage and iteration the checkpoint holds. The run is deterministic, so a resumed
run ends with the same model as an uninterrupted one. Training data: labelled audio as for `stream
train-embedding` (speaker = subfolder or first field of the file name); UBM on every `ubm_frame_stride`-th voiced
frame, T and LDA on segments of `segment_frames` voiced frames (several per speaker even from one utterance).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from nodes.embedding.train import LabelledFile
from nodes.speakers.ivector import tvm, ubm
from nodes.speakers.ivector.features import FEAT_DIM, ivector_features
from nodes.speakers.ivector.model import Checkpoint
from nodes.speakers.ivector.stats import stack_stats
from nodes.speakers.plda import fit_lda
from stream.errors import ConfigError


def load_features(files: Sequence[LabelledFile]) -> list[np.ndarray]:
    from nodes.embedding.files import load_audio

    return [ivector_features(load_audio(f.path), str(f.path)) for f in files]


def segments(features: Sequence[np.ndarray], labels: Sequence[str], size: int) -> tuple[list[np.ndarray], list[str]]:
    """Each utterance cut into pieces of `size` frames (a remainder under half a piece joins the last one)."""
    pieces, owners = [], []
    for feats, label in zip(features, labels):
        cut = [feats[s:s + size] for s in range(0, len(feats), size)]
        if len(cut) > 1 and len(cut[-1]) < size // 2:
            cut[-2:] = [np.concatenate(cut[-2:])]
        pieces += cut
        owners += [label] * len(cut)
    return pieces, owners


def total_iterations(ckpt: Checkpoint) -> int:
    cfg = ckpt.config
    return len(ubm.schedule(cfg.components, cfg.ubm_iters_per_split, cfg.ubm_final_iters)) + cfg.tvm_iters + 1


def done_iterations(ckpt: Checkpoint) -> int:
    cfg = ckpt.config
    ubm_total = len(ubm.schedule(cfg.components, cfg.ubm_iters_per_split, cfg.ubm_final_iters))
    return {"ubm": 0, "tvm": ubm_total, "lda": ubm_total + cfg.tvm_iters,
            "done": ubm_total + cfg.tvm_iters + 1}[ckpt.stage] + ckpt.iteration


def train(ckpt: Checkpoint, files: Sequence[LabelledFile], out, progress: bool = True) -> Checkpoint:
    """Run `ckpt` to the end on `files`, checkpointing to `out` after every iteration."""
    from tqdm import tqdm

    cfg = ckpt.config
    if ckpt.stage == "done":
        return ckpt
    features = load_features(files)
    labels = [f.speaker for f in files]
    plan = ubm.schedule(cfg.components, cfg.ubm_iters_per_split, cfg.ubm_final_iters)
    with tqdm(total=total_iterations(ckpt), initial=done_iterations(ckpt), unit="iter", disable=not progress,
              desc="train i-vector") as bar:
        if ckpt.stage == "ubm":
            frames = np.concatenate(features)[::cfg.ubm_frame_stride]
            floor = ubm.VAR_FLOOR * frames.var(axis=0)
            gmm = ckpt.gmm if ckpt.iteration else ubm.single(frames)
            while ckpt.iteration < len(plan):
                if plan[ckpt.iteration]:
                    gmm = ubm.split(gmm)
                gmm, loglik = ubm.em_step(gmm, frames, floor)
                ckpt.iteration += 1
                ckpt.arrays.update(weights=gmm.weights, means=gmm.means, variances=gmm.variances)
                ckpt.save(out)
                bar.update(1)
                bar.set_postfix(stage="ubm", gaussians=gmm.size, loglik=f"{loglik:.2f}")
            ckpt.stage, ckpt.iteration = "tvm", 0
        pieces, owners = segments(features, labels, cfg.segment_frames)
        n, f = stack_stats(ckpt.gmm, pieces)
        if ckpt.stage == "tvm":
            if "t" not in ckpt.arrays:
                key = jax.random.PRNGKey(cfg.seed)
                ckpt.arrays["t"] = tvm.init_t(key, cfg.components, FEAT_DIM, cfg.rank)
            n_j, f_j = jnp.asarray(n, jnp.float32), jnp.asarray(f, jnp.float32)
            while ckpt.iteration < cfg.tvm_iters:
                t, norm = tvm.em_step(jnp.asarray(ckpt.arrays["t"], jnp.float32), n_j, f_j)
                ckpt.arrays["t"] = np.asarray(t)
                ckpt.iteration += 1
                ckpt.save(out)
                bar.update(1)
                bar.set_postfix(stage="T", ivector_norm2=f"{float(norm):.1f}")
            ckpt.stage, ckpt.iteration = "lda", 0
        ivectors = tvm.extract(ckpt.arrays["t"], n, f)
        if len(set(owners)) < 2:
            raise ConfigError("LDA needs segments of at least 2 speakers")
        mean, lda = fit_lda(ivectors.astype(np.float64), np.array(owners), cfg.lda_dim)
        ckpt.arrays.update(lda_mean=mean, lda=lda)
        ckpt.stage = "done"
        ckpt.save(out)
        bar.update(1)
    return ckpt
