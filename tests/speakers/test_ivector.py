"""i-vector extractor (issue 23): a training run killed with SIGKILL resumes from its checkpoint, and the model it
ends with verifies LibriSpeech test-other speakers it never saw, better with PLDA than with cosine scoring."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from nodes.speakers.plda import fit_plda

# A tiny configuration (16 Gaussians, 20-d i-vectors): ~10 EM iterations, seconds on the train split.
TINY = ["--components", "16", "--rank", "20", "--ubm-iters-per-split", "1", "--ubm-final-iters", "2",
        "--tvm-iters", "3"]


def _train(data, out, *extra: str) -> subprocess.Popen:
    folder = data / "speakers" / "librispeech" / "librispeech_train-clean-100"
    return subprocess.Popen([sys.executable, "-m", "stream.cli", "train-ivector", "--data", str(folder), "--out",
                             str(out), *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _meta(path) -> dict:
    with np.load(path) as ckpt:
        return json.loads(str(ckpt["meta"]))


@pytest.fixture(scope="module")
def ivector_ckpt(data, tmp_path_factory):
    """Train on the 251 train-clean-100 speakers, kill -9 after the first checkpoint, resume to the end."""
    out = tmp_path_factory.mktemp("ivector") / "ivector.npz"
    proc = _train(data, out, *TINY)
    deadline = time.monotonic() + 120
    while not out.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = _meta(out)
    assert killed["stage"] != "done", "the run finished before it could be killed"
    resumed = _train(data, out, "--resume")
    log = resumed.communicate(timeout=180)[0]
    assert resumed.returncode == 0, log
    return out, killed, log


def test_train_resumes_after_kill(ivector_ckpt):
    out, killed, log = ivector_ckpt
    assert killed["stage"] == "ubm" and killed["iteration"] >= 1
    assert f"ubm stage, iteration {killed['iteration']} of 10" in log  # continued where the checkpoint was
    meta = _meta(out)
    assert meta["stage"] == "done" and meta["config"]["components"] == 16
    assert not out.with_name(out.name + ".tmp.npz").exists()


def test_ivector_eer_plda_beats_cosine(ivector_ckpt):
    """EER on all pairs of the 100 test-other utterances (450 target / 4500 impostor): measured 6.0 % cosine,
    3.6 % PLDA (PLDA fitted on 4 s pieces of the train speakers)."""
    from nodes.embedding.files import load_audio
    from nodes.speakers import systems
    from nodes.speakers.lab import evaluate, pieces, split
    from stream.paths import data_dir

    protocol = split(data_dir() / "speakers" / "index.csv")
    train = pieces([load_audio(p) for p in protocol.train], protocol.train_speakers)
    test = ([load_audio(p) for p in protocol.test], protocol.test_speakers)
    cos, plda = evaluate(systems.ivector(ivector_ckpt[0]), train, test)
    assert (cos.scores.targets, cos.scores.impostors) == (450, 4500)
    assert cos.scores.eer < 9.0
    assert plda.scores.eer < 5.0
    assert plda.scores.eer < cos.scores.eer - 1.0


def test_plda_score_is_the_gaussian_likelihood_ratio():
    rng = np.random.default_rng(0)
    speakers = rng.normal(size=(40, 6)) * 3
    labels = np.repeat(np.arange(40), 5)
    x = speakers[labels] + rng.normal(size=(200, 6))
    plda = fit_plda(x, labels, dim=4)
    a, b = x[:1], x[5:7]
    llr = plda.score(a, b)[0]
    phi, ya, yb = plda.phi, plda(a)[0], plda(b)
    same = np.block([[np.diag(phi + 1), np.diag(phi)], [np.diag(phi), np.diag(phi + 1)]])
    for k in range(2):
        pair = np.concatenate([ya, yb[k]])
        expect = (multivariate_normal(np.zeros(8), same).logpdf(pair)
                  - multivariate_normal(np.zeros(8), np.diag(np.tile(phi + 1, 2))).logpdf(pair))
        assert llr[k] == pytest.approx(expect, abs=1e-6)
    assert plda.score(x[:5], x[:5])[0, 1:].mean() > plda.score(x[:5], x[5:10]).mean()  # same > other speaker
