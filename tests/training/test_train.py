"""AAM-softmax training of the x-vector and d-vector baselines: the loss, data labelling, resume, and a short run
on LibriSpeech that must beat random weights on held-out speakers."""

from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nodes.embedding import dvector, xvector
from nodes.embedding.train import (aam_logits, embed_utterances, labelled_files, load_checkpoint, load_features,
                                   new_state, train)
from nodes.embedding.train_config import TrainConfig
from nodes.speakers.calibration import threshold_at_eer
from nodes.speakers.scoring import cosine
from stream.cli import main
from stream.errors import ConfigError


def test_aam_logits_known_values():
    """Embedding at 60 degrees from its class weight and 90 from the other: target s*cos(60deg + m), other 0."""
    emb = jnp.array([[1.0, 0.0]])
    weights = jnp.array([[0.5, 0.0], [np.sqrt(3) / 2, 1.0]])  # columns are class weights
    logits = aam_logits(emb, weights, jnp.array([0]), jnp.array(0.2), 30.0)
    np.testing.assert_allclose(logits, [[30 * np.cos(np.pi / 3 + 0.2), 0.0]], atol=1e-5)
    np.testing.assert_allclose(aam_logits(emb, weights, jnp.array([0]), jnp.array(0.0), 30.0), [[15.0, 0.0]], atol=1e-5)


def test_labelled_files(tmp_path):
    """Subfolder = speaker; a file directly in the folder: first field of its name."""
    for rel in ["alice/x.wav", "alice/deep/y.flac", "19-198-0001.flac", "bob_2.wav", "notes.txt"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).touch()
    got = {f.path.relative_to(tmp_path).as_posix(): f.speaker for f in labelled_files(tmp_path)}
    assert got == {"alice/x.wav": "alice", "alice/deep/y.flac": "alice", "19-198-0001.flac": "19", "bob_2.wav": "bob"}
    with pytest.raises(ConfigError, match="at least 2 speakers"):
        labelled_files(tmp_path / "alice" / "deep")


@pytest.fixture(scope="module")
def held_out(data: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """fbank of the test-other utterances of >= 4.5 s, frames 50..450 (4 s: one shape to compile), and speakers."""
    with open(data / "speakers" / "index.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f)
                if r["subset"] == "librispeech_test-other" and float(r["duration_s"]) >= 4.5]
    feats = [f[50:450] for f in load_features([data / "speakers" / r["path"] for r in rows])]
    return feats, np.array([r["speaker_id"] for r in rows])


def _eer(state, held_out) -> float:
    feats, speakers = held_out
    emb = embed_utterances(state.kind, state.model_config, state.params["model"], feats)
    i, j = np.triu_indices(len(feats), k=1)
    scores, same = cosine(emb, emb)[i, j], speakers[i] == speakers[j]
    return threshold_at_eer(scores[same], scores[~same])[1]


@pytest.mark.parametrize(("kind", "model_config", "steps", "bound"), [
    ("xvector", xvector.XVectorConfig(channels=64, stats_channels=128, embed_dim=64), 200, 0.6),
    ("dvector", dvector.DVectorConfig(hidden=64, layers=1, embed_dim=64, window=100), 400, 0.6),
])
def test_short_training_beats_random_weights(data, held_out, tmp_path, kind, model_config, steps, bound):
    """Tiny networks, 60 train-clean-100 speakers, 1 s crops: the loss falls and the EER on the 67 disjoint
    test-other utterances drops below `bound` x the random-weight EER (measured: x-vector 23 % -> 11 %,
    d-vector 21 % -> 8 %)."""
    files = labelled_files(data / "speakers" / "librispeech" / "librispeech_train-clean-100")[:60]
    cfg = TrainConfig(steps=steps, batch=32, crop_frames=100, lr=5e-3 if kind == "xvector" else 2e-3, warmup=20,
                      margin_warmup=steps // 2, checkpoint_every=steps)
    state = new_state(kind, model_config, cfg, sorted({f.speaker for f in files}))
    random_eer = _eer(state, held_out)
    losses = train(state, files, tmp_path / "ckpt.npz", progress=False)
    assert np.mean(losses[-20:]) < np.mean(losses[:20]) - 1.0  # nats, with the margin ramped up meanwhile
    trained_eer = _eer(state, held_out)
    assert trained_eer < bound * random_eer, (random_eer, trained_eer)
    assert load_checkpoint(tmp_path / "ckpt.npz").step == steps


def _cli(*argv: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(argv)) == 0
    return out.getvalue()


def test_resumed_run_equals_uninterrupted_run(data, tmp_path):
    """`stream train-embedding` stopped at step 3 (--until) and resumed to 6 gives the same weights as 6 steps
    in one go (3 speakers, 8 crops a step)."""
    folder = tmp_path / "data"
    folder.mkdir()
    for src in sorted((data / "speakers" / "librispeech" / "librispeech_train-clean-100").glob("*.flac"))[:3]:
        (folder / src.name).symlink_to(src)
    common = ["train-embedding", "--data", str(folder), "--model", "xvector", "--steps", "6", "--batch", "8"]
    _cli(*common, "--out", str(tmp_path / "straight.npz"))
    _cli(*common, "--out", str(tmp_path / "resumed.npz"), "--until", "3")
    assert load_checkpoint(tmp_path / "resumed.npz").step == 3
    printed = _cli(*common[:5], "--out", str(tmp_path / "resumed.npz"), "--resume")
    assert "from step 3 to 6" in printed
    straight, resumed = load_checkpoint(tmp_path / "straight.npz"), load_checkpoint(tmp_path / "resumed.npz")
    assert resumed.step == 6
    for a, b in zip(jax.tree_util.tree_leaves(straight.params), jax.tree_util.tree_leaves(resumed.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    with pytest.raises(SystemExit):
        main(["train-embedding", "--data", str(folder), "--model", "cnn", "--out", str(tmp_path / "x.npz")])
    assert main([*common, "--out", str(tmp_path / "straight.npz")]) == 1  # exists, no --resume


def test_streamable_xvector_trains_on_causal_input(data, tmp_path):
    """`--mean-s 1` makes an x-vector whose input is the causal 100-frame sliding mean subtraction: stored in the
    checkpoint and used by `embed_utterances`; `--mean-s` is refused for the d-vector."""
    folder = tmp_path / "data"
    folder.mkdir()
    for src in sorted((data / "speakers" / "librispeech" / "librispeech_train-clean-100").glob("*.flac"))[:3]:
        (folder / src.name).symlink_to(src)
    common = ["train-embedding", "--data", str(folder), "--steps", "2", "--batch", "4"]
    _cli(*common, "--model", "xvector", "--mean-s", "1", "--out", str(tmp_path / "x.npz"))
    state = load_checkpoint(tmp_path / "x.npz")
    assert state.model_config.mean_frames == 100
    feats = load_features([next(folder.iterdir())])[0][:300]
    emb = embed_utterances("xvector", state.model_config, state.params["model"], [feats])
    direct = xvector.embed(state.params["model"], jnp.asarray(xvector.normalise(feats, state.model_config)[None]))
    np.testing.assert_allclose(emb, direct, atol=1e-5)
    centred = xvector.embed(state.params["model"], jnp.asarray((feats - feats.mean(0))[None]))
    assert np.abs(emb - centred).max() > 1e-2  # not the utterance-mean input
    assert main([*common, "--model", "dvector", "--mean-s", "1", "--out", str(tmp_path / "d.npz")]) == 1


def test_train_embedding_resumes_after_kill(data, tmp_path):
    """A `stream train-embedding` process killed with SIGKILL after a checkpoint leaves a readable one (atomic
    writes), and --resume continues it from that step to the end (3 speakers, checkpoint every step)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    folder = tmp_path / "data"
    folder.mkdir()
    for src in sorted((data / "speakers" / "librispeech" / "librispeech_train-clean-100").glob("*.flac"))[:3]:
        (folder / src.name).symlink_to(src)
    out = tmp_path / "x.npz"
    args = [sys.executable, "-m", "stream.cli", "train-embedding", "--data", str(folder), "--model", "xvector",
            "--out", str(out)]
    proc = subprocess.Popen([*args, "--steps", "30", "--batch", "4", "--crop-frames", "50", "--checkpoint-every", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not out.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = load_checkpoint(out).step
    assert 1 <= killed < 30
    resumed = subprocess.run([*args, "--resume"], capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    assert f"from step {killed} to 30" in resumed.stdout
    assert load_checkpoint(out).step == 30
