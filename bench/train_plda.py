"""Fit the PLDA model that VBx refinement uses (`nodes/diarization/plda/`), on the simulated TUNE sessions only.

Why these embeddings: VBx clusters the chain's own window embeddings (CAM++ pooled over one local speaker's
activity in an 8 s window, through the shared trunk, in reverberant, noisy, overlapped speech), so the PLDA is fitted
on exactly those, labelled by the reference: a (window, local speaker) pair with at least ``--min-speech`` s of
activity of which ``--purity`` is one reference speaker talking alone gets that speaker's LibriSpeech id (the same
voice in every session it appears in). The report half's speakers are disjoint from these, so nothing of the
report set is seen. The model is 5 small .npy files (~100 kB), committed with this script that remakes it:

    .venv/bin/python bench/simulate_meetings.py --sets tune          # /work/simdata/tune
    nice -n 10 .venv/bin/python bench/train_plda.py [--sessions /work/simdata/tune] [--out nodes/diarization/plda]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from nodes.diarization.files import diarize_file
from nodes.diarization.pipeline import DiarizationConfig
from nodes.diarization.refine import PLDA_DIR, RefineConfig, WindowRecord
from nodes.diarization.windows import WindowAnalyzer
from nodes.speakers.plda import fit_plda
from stream.models import load_params, use_compile_cache
from stream.rttm import Turn, read_rttm


def reference_activity(turns: list[Turn], frames: int, resolution: float) -> tuple[np.ndarray, list[str]]:
    """[frames, speakers] bool on the output grid, and the speaker labels of its columns."""
    labels = sorted({t.label for t in turns})
    out = np.zeros((frames, len(labels)), bool)
    for t in turns:
        out[max(0, round(t.start / resolution)):round(t.end / resolution), labels.index(t.label)] = True
    return out, labels


def labelled_windows(records: list[WindowRecord], reference: np.ndarray, labels: list[str], resolution: float,
                     min_speech: float, purity: float) -> tuple[list[np.ndarray], list[str]]:
    """(embeddings, speaker labels) of the windows' local speakers that are one reference speaker talking alone."""
    embeddings, speakers = [], []
    frames = len(reference)
    for r in records:
        lo, hi = max(r.first_frame, 0), min(r.first_frame + len(r.activity), frames)
        if r.embeddings is None or hi <= lo:
            continue
        active = r.activity[lo - r.first_frame:hi - r.first_frame] > 0.5
        ref = reference[lo:hi]
        alone = ref.sum(axis=1) == 1
        for s in range(active.shape[1]):
            a = active[:, s]
            if a.sum() * resolution < min_speech or not np.all(np.isfinite(r.embeddings[s, 0])):
                continue
            k = int(np.argmax((a[:, None] & ref).sum(axis=0)))
            if (a & ref[:, k] & alone).sum() >= purity * a.sum():
                embeddings.append(r.embeddings[s, 0])
                speakers.append(labels[k])
    return embeddings, speakers


def run() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=Path, default=Path("/work/simdata/tune"))
    parser.add_argument("--out", type=Path, default=PLDA_DIR)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--min-speech", type=float, default=1.0)
    parser.add_argument("--purity", type=float, default=0.8)
    args = parser.parse_args()
    use_compile_cache()
    config = replace(DiarizationConfig(), refine=RefineConfig(method="ahc"))  # no PLDA needed to get the windows
    g = config.geometry
    analyzer = WindowAnalyzer(load_params("segmentation-3.0"), load_params("campplus"), g, config.overlap_weight)
    references: dict[str, list[Turn]] = {}
    for rttm in args.sessions.glob("*.rttm"):
        references.update(read_rttm(rttm))
    embeddings, speakers = [], []
    for path in sorted(p for p in args.sessions.iterdir() if p.suffix in (".flac", ".wav") and p.stem in references):
        result = diarize_file(path, analyzer, config, refine=True)
        reference, labels = reference_activity(references[path.stem], round(result.duration / g.resolution),
                                               g.resolution)
        e, s = labelled_windows(result.windows, reference, labels, g.resolution, args.min_speech, args.purity)
        embeddings += e
        speakers += s
        print(f"{path.stem}: {len(e)} windows, {len(set(speakers))} speakers so far", flush=True)
    plda = fit_plda(np.stack(embeddings), np.array(speakers), args.dim)
    plda.save(args.out)
    print(f"PLDA on {len(embeddings)} windows of {len(set(speakers))} speakers, {plda.dim} dims -> {args.out}")


if __name__ == "__main__":
    run()
