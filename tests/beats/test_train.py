"""Fine-tuning BeatNet's CRNN (nodes/beats/train.py), tiny: two synthesised drum grooves, BeatNet model 1 as the
start. Guards: the targets put 1 on the beat frame and `widen` beside it; the loss on a fixed batch falls by a
quarter in 16 steps; a run stopped at step 8 and resumed from its checkpoint ends with the uninterrupted run's
weights; the shipped fine-tuned weights load and fit the network."""

from __future__ import annotations

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


def test_fine_tuning_lowers_the_loss_and_resumes_exactly(tmp_path):
    examples = []
    for seed, bpm in ((1, 96.0), (2, 132.0)):
        x, beats = drum_groove(bpm, bpm, 99.0, 6.0, seed=seed, rate=RATE)
        positions = np.arange(len(beats)) % 4 + 1
        examples += [make_example(x, beats, positions, CONFIG.widen),
                     make_example(x, beats, positions, CONFIG.widen, np.random.default_rng(seed), 1.1)]
    held_out = [(examples[0].features.astype(np.float32), drum_groove(96.0, 96.0, 99.0, 6.0, seed=1, rate=RATE)[1])]
    start = weights("crnn")
    batch = crop_batch(examples, np.random.default_rng(99), CONFIG)
    before = float(loss_fn(start, *batch, CONFIG))

    final = tmp_path / "full.npz"
    trained, meta = train(start, examples, held_out, CONFIG, final, 0.023, log=lambda s: None)
    assert meta["step"] == CONFIG.steps and 0 <= meta["best_f"] <= 1
    last = load_last(final)
    assert float(loss_fn(last, *batch, CONFIG)) < 0.75 * before

    resumed = tmp_path / "resumed.npz"
    train(start, examples, held_out, CONFIG, resumed, 0.023, until=8, log=lambda s: None)
    train(start, examples, held_out, CONFIG, resumed, 0.023, log=lambda s: None)
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
