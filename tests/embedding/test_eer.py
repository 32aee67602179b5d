"""`stream eval eer` math and CAM++ verification quality on a LibriSpeech subset (the full 351-utterance figure,
0.05 % EER, is in bench/RESULTS.md: it takes minutes)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from nodes.embedding.api import embed_feature_list, waveform_fbank
from nodes.embedding.files import load_audio
from nodes.speakers.scoring import cosine
from stream.cli import main
from nodes.speakers.metrics import det_curve, min_dcf, verification_scores
from stream.commands.eval_eer import index_trials

CROP_S = 3.5  # keeps every utterance in the shape bucket the other CAM++ tests compile (T <= 400, B = 4)


def test_eer_and_min_dcf_on_known_scores():
    target = np.array([0.9, 0.8, 0.7, 0.4])
    impostor = np.array([0.1, 0.2, 0.3, 0.5, 0.6, 0.0, 0.05, 0.15])
    result = verification_scores(target, impostor, p_target=0.5)
    assert result.eer == pytest.approx(25.0)  # one of 4 targets below, 2 of 8 impostors above 0.5
    assert result.min_dcf == pytest.approx(0.25)  # threshold 0.7: one miss (1/4), no false alarm
    _, frr, far = det_curve(target, impostor)
    assert frr[0] == 0 and far[0] == 1 and frr[-1] == 1 and far[-1] == 0
    assert min_dcf(target, impostor, 0.5) == pytest.approx(min(frr * 0.5 + far * 0.5) / 0.5)


def test_all_index_pairs_count(data):
    paths, pairs = index_trials(data / "speakers" / "index.csv")
    target = sum(t for _, _, t in pairs)
    assert (len(paths), target, len(pairs) - target) == (351, 450, 60975)


def test_campplus_subset_eer(data, campplus_params):
    """All 450 target trials (the 100 test-other utterances) against 40 train-clean impostor speakers."""
    with open(data / "speakers" / "index.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    rows = [r for r in rows if "test-other" in r["subset"]] + [r for r in rows if "train-clean" in r["subset"]][:40]
    feats = [waveform_fbank(load_audio(data / "speakers" / r["path"])[: int(CROP_S * 16000)], 16000) for r in rows]
    emb = embed_feature_list(campplus_params, feats, batch_size=4)
    spk = np.array([r["speaker_id"] for r in rows])
    i, j = np.triu_indices(len(rows), 1)
    scores = cosine(emb, emb)[i, j]
    result = verification_scores(scores[spk[i] == spk[j]], scores[spk[i] != spk[j]])
    assert result.targets == 450
    assert result.eer <= 0.2  # measured 0.011 % (one error) on these 3.5 s crops; full set: 0.051 %


def test_eval_eer_command_writes_det(tmp_path, data, capsys):
    """A trial list over precomputed embeddings: the command prints the table and draws the PNG."""
    rng = np.random.default_rng(0)
    spk_a, spk_b = rng.standard_normal(192), rng.standard_normal(192)
    paths = [tmp_path / f"{n}.wav" for n in ("a1", "a2", "b1", "b2")]
    emb = np.stack([spk_a + 0.1 * rng.standard_normal(192) for _ in range(2)]
                   + [spk_b + 0.1 * rng.standard_normal(192) for _ in range(2)]).astype(np.float32)
    np.savez(tmp_path / "emb.npz", embeddings=emb, paths=np.array([str(p) for p in paths]), model=np.array("test"))
    (tmp_path / "trials.txt").write_text("1 a1.wav a2.wav\n1 b1.wav b2.wav\n0 a1.wav b1.wav\n0 a2.wav b2.wav\n"
                                         "0 a1.wav b2.wav\n")
    det = tmp_path / "det.png"
    code = main(["eval", "eer", "--trials", str(tmp_path / "trials.txt"), "--embeddings", str(tmp_path / "emb.npz"),
                 "--det", str(det)])
    out = capsys.readouterr().out
    assert code == 0
    assert "trials.txt" in out and " 0.000 " in out  # perfectly separated: EER 0
    assert det.stat().st_size > 10_000
