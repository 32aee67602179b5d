"""Fine-tuning BeatNet's CRNN (nodes/beats/train.py), tiny: two synthesised drum grooves, BeatNet model 1 as the
start. Guards: the targets put 1 on the beat frame and `widen` beside it; the loss on a fixed batch falls by a
quarter in 16 steps; a run killed with SIGKILL after its step-8 checkpoint and resumed ends with the uninterrupted
run's weights; the shipped fine-tuned weights load and fit the network."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np

from nodes.beats.beatnet import TUNED, crnn, init_lstm_state, weights
from nodes.beats.onset import RATE
from nodes.beats.train import TrainConfig, crop_batch, loss_fn, make_example, targets, train
from beat_signals import drum_groove

CONFIG = TrainConfig(steps=16, batch=4, crop_frames=120, warmup=10, lr=2e-3, eval_every=8, patience=99)


def test_targets_are_widened_beats():
    beat, down = targets(np.array([0.5, 1.0]), np.array([1, 2]), 80, 0.5)
    assert beat[25] == 1 and beat[24] == beat[26] == 0.5 and beat[50] == 1 and beat.sum() == 4
    assert down[25] == 1 and down[50] == 0 and down.sum() == 2


def _examples() -> tuple[list, list]:
    """Two grooves, each as is and time-stretched; the first groove again as the held-out item."""
    examples = []
    for seed, bpm in ((1, 96.0), (2, 132.0)):
        x, beats = drum_groove(bpm, bpm, 99.0, 6.0, seed=seed, rate=RATE)
        positions = np.arange(len(beats)) % 4 + 1
        examples += [make_example(x, beats, positions, CONFIG.widen),
                     make_example(x, beats, positions, CONFIG.widen, np.random.default_rng(seed), 1.1)]
    held_out = [(examples[0].features.astype(np.float32), drum_groove(96.0, 96.0, 99.0, 6.0, seed=1, rate=RATE)[1])]
    return examples, held_out


def _train(checkpoint: Path) -> dict:
    examples, held_out = _examples()
    return train(weights("crnn"), examples, held_out, CONFIG, checkpoint, 0.023, log=lambda s: None)[1]


def _checkpoint_step(path: Path) -> int:
    try:
        with np.load(path) as data:
            return int(json.loads(str(data["meta"]))["step"])
    except (OSError, ValueError, KeyError):
        return 0  # not written yet


def test_fine_tuning_lowers_the_loss_and_resumes_exactly(tmp_path):
    examples, _ = _examples()
    batch = crop_batch(examples, np.random.default_rng(99), CONFIG)
    before = float(loss_fn(weights("crnn"), *batch, CONFIG))

    final = tmp_path / "full.npz"
    meta = _train(final)
    assert meta["step"] == CONFIG.steps and 0 <= meta["best_f"] <= 1
    last = load_last(final)
    assert float(loss_fn(last, *batch, CONFIG)) < 0.75 * before

    resumed = tmp_path / "resumed.npz"  # this module run as a script trains into it; killed after a checkpoint
    proc = subprocess.Popen([sys.executable, __file__, str(resumed)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline and _checkpoint_step(resumed) == 0:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # no-op if it already ended
    proc.wait()
    assert _checkpoint_step(resumed) == 8
    _train(resumed)
    assert _checkpoint_step(resumed) == CONFIG.steps
    for a, b in zip(jax.tree_util.tree_leaves(load_last(resumed)), jax.tree_util.tree_leaves(last)):
        np.testing.assert_allclose(a, b, atol=1e-6)


def load_last(path):
    from nodes.beats.train import load

    params, _, _ = load(path)
    return params


def test_shipped_weights_fit_the_network():
    assert TUNED.is_file() and TUNED.stat().st_size <= 2_000_000
    probs, _ = crnn(weights("crnn-tuned"), np.zeros((50, 272), np.float32), init_lstm_state())
    assert probs.shape == (50, 3) and np.allclose(np.asarray(probs).sum(axis=1), 1, atol=1e-5)


if __name__ == "__main__":  # the process the resume test kills
    _train(Path(sys.argv[1]))
