"""Isolated embeddings (nodes/diarization/isolated.py): each local speaker of a window is embedded on the frames it
alone speaks, which must be that voice's audio and nothing else. A window of two LibriSpeech voices (4 s each, with
a 1 s overlap between them marked active for both) against CAM++ on each voice's own audio outside the overlap."""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import soundfile as sf

from nodes.diarization.files import diarize_file, isolate_kept
from nodes.diarization.isolated import alone, isolated_embeddings
from nodes.embedding.api import embed_waveforms, load_campplus
from stream.commands.diarize import build

RATE, RESOLUTION = 16000, 0.02


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_alone_marks_frames_of_one_active_speaker_only():
    activity = np.array([[0.9, 0.1, 0.0], [0.9, 0.8, 0.0], [0.2, 0.7, 0.0], [0.0, 0.0, 0.0]])
    assert alone(activity).tolist() == [[True, False, False], [False, False, False], [False, True, False],
                                        [False, False, False]]


def test_each_local_speaker_is_embedded_on_its_own_audio(data):
    first = data / "speakers/librispeech/librispeech_test-other/1688/1688-142285-0000.flac"
    second = next(p for p in sorted((data / "speakers/librispeech").rglob("*.flac")) if "/1688/" not in str(p))
    a, b = (sf.read(p, dtype="float32")[0][: 5 * RATE] for p in (first, second))
    window = np.concatenate([a[: 4 * RATE], np.zeros(4 * RATE, np.float32)])
    window[3 * RATE:] += b[: 5 * RATE]  # A 0-4 s (marked from 0.6 s), B 3-8 s
    frames = round(8 / RESOLUTION)
    activity = np.zeros((frames, 3), np.float32)
    activity[30: round(4 / RESOLUTION), 0] = 1.0
    activity[round(3 / RESOLUTION):, 1] = 1.0
    activity[10:30, 2] = 1.0  # 0.2-0.6 s: under min_speech
    params = load_campplus()
    [emb] = isolated_embeddings(params, [window], [activity], RESOLUTION, min_speech=0.5)
    reference = embed_waveforms(params, [window[round(0.6 * RATE): 3 * RATE], window[4 * RATE:]])
    assert cosine(emb[0], reference[0]) > 0.99 and cosine(emb[1], reference[1]) > 0.99
    assert cosine(emb[0], reference[1]) < 0.5 and cosine(emb[1], reference[0]) < 0.5
    assert np.isnan(emb[2]).all()


def test_file_mode_and_kept_windows_give_the_same_isolated_embeddings(data):
    """`diarize_file_at` embeds every isolate_every-th window alone as it goes; `isolate_kept` adds them afterwards
    to windows kept without them (bench replays): both must see the same audio for each window."""
    config, analyzer, _ = build(argparse.Namespace(latency=0.5, max_speakers=None, enrolled=None, segmentation=""))
    config = dataclasses.replace(config, refine=dataclasses.replace(config.refine, isolate_every=8))
    path = data / "diarization" / "ami" / "dev00.flac"
    records = diarize_file(path, analyzer, config, refine=True).windows
    live = {j: r.isolated for j, r in enumerate(records) if r.isolated is not None}
    assert set(live) == {j for j, r in enumerate(records) if j % 8 == 0 and r.embeddings is not None}
    assert sum(np.isfinite(e[:, 0]).sum() for e in live.values()) >= 5
    for r in records:
        r.isolated = None
    assert isolate_kept(records, path, analyzer.emb_params, config)
    for j, emb in live.items():
        again = records[j].isolated
        assert np.array_equal(np.isnan(emb[:, 0]), np.isnan(again[:, 0]))
        for a, b in zip(emb, again):
            if np.isfinite(a[0]):
                assert cosine(a, b) > 0.999
