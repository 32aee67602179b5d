"""`stream train-segmentation` end to end on a tiny configuration: a 1-minute simulated meeting of 3 tune-half
speakers (bench/simulate_meetings.py), 2 x 3 s chunks per step. Guards: the permutation-invariant loss of fixed
chunks falls, the saved weights reload through the config path with the same outputs, and a run killed with
SIGKILL and resumed from its checkpoint ends with exactly the weights of an uninterrupted one."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
import soundfile as sf

from nodes.segmentation.chunks import load_conversations, training_batch
from nodes.segmentation.train_config import Augmentation
from nodes.segmentation.finetune import batch_loss, load_checkpoint
from nodes.segmentation.model import pyannet
from nodes.segmentation.powerset import PERMUTATIONS, permutation_invariant_loss, to_powerset
from nodes.segmentation.weights import load_segmentation
from stream.cli import main
from stream.errors import ModelError
from stream.rttm import format_rttm, write_uem

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import simulate_meetings as sim  # noqa: E402

STEPS = ["--steps", "16", "--batch", "2", "--chunk-s", "3", "--lr", "3e-4", "--checkpoint-every", "4"]


@pytest.fixture(scope="module")
def meeting(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tune = sim.split_halves(sim.speaker_groups(data))["tune"]
    long_ids = sorted(tune[sim.LONG_GROUP])[:2]
    every = {s: p for spk in tune.values() for s, p in spk.items()}
    short = sorted(s for g, spk in tune.items() if g != sim.LONG_GROUP for s in spk)[:1]
    session = sim.simulate("mtg", 5, {s: every[s] for s in long_ids + short}, 1.0, set(long_ids), [], snr=20.0,
                           overlap=0.2)
    folder = tmp_path_factory.mktemp("conversations")
    sf.write(folder / "mtg.flac", session.audio, sim.RATE)
    (folder / "reference.rttm").write_text(format_rttm("mtg", session.turns))
    write_uem(folder / "reference.uem", {"mtg": [(0.0, len(session.audio) / sim.RATE)]})
    return folder


def _checkpoint_step(path: Path) -> int:
    try:
        with np.load(path) as data:
            return int(json.loads(str(data["meta"]))["step"])
    except (OSError, ValueError, KeyError):
        return 0  # not written yet


def _kill_after_checkpoint(argv: list[str], ckpt: Path) -> int:
    """Run `stream ARGV` as a process, SIGKILL it once its checkpoint is past step 0; the step it was killed at."""
    proc = subprocess.Popen([sys.executable, "-m", "stream.cli", *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline and _checkpoint_step(ckpt) == 0:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # no-op if it already ended
    proc.wait()
    return _checkpoint_step(ckpt)


def test_loss_is_the_best_speaker_order():
    rng = np.random.default_rng(0)
    log_probs = jnp.log(jnp.asarray(rng.dirichlet(np.ones(7), size=(2, 50)), jnp.float32))
    targets = jnp.asarray(rng.random((2, 50, 3)) < 0.3, jnp.float32)
    per_order = [[float(-jnp.take_along_axis(log_probs[b], to_powerset(targets[b][:, list(p)])[:, None], 1).mean())
                  for p in PERMUTATIONS] for b in range(2)]
    assert float(permutation_invariant_loss(log_probs, targets)) == pytest.approx(np.mean(np.min(per_order, 1)),
                                                                                 rel=1e-5)
    swapped = targets[..., jnp.asarray([2, 0, 1])]  # same reference, speakers in another order
    assert float(permutation_invariant_loss(log_probs, swapped)) == pytest.approx(
        float(permutation_invariant_loss(log_probs, targets)), rel=1e-6)


def test_finetune_lowers_loss_reloads_and_resumes(meeting: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    conversations = load_conversations(meeting)
    audio, targets = training_batch(conversations, 8, 48000, Augmentation(reverb=0, noise=0, level_db=(0, 0)), 99, 0)
    before = float(batch_loss(load_segmentation(), audio, targets))

    straight, resumed = tmp_path / "straight.npz", tmp_path / "resumed.npz"
    assert main(["train-segmentation", "--data", str(meeting), "--out", str(straight), *STEPS]) == 0
    killed = _kill_after_checkpoint(["train-segmentation", "--data", str(meeting), "--out", str(resumed), *STEPS],
                                    tmp_path / "resumed.ckpt.npz")
    assert 4 <= killed < 16 and not resumed.exists()
    assert main(["train-segmentation", "--data", str(meeting), "--out", str(resumed), "--steps", "20"]) != 0
    assert "run the same command to resume" in capsys.readouterr().err
    assert main(["train-segmentation", "--data", str(meeting), "--out", str(resumed), *STEPS]) == 0

    tuned = load_segmentation(straight)  # the config path: `stream diarize --segmentation`, node `weights`
    after = float(batch_loss(tuned, audio, targets))
    assert after < before - 0.01, (before, after)
    trained = load_checkpoint(tmp_path / "straight.ckpt.npz").params  # the run's own last parameters
    np.testing.assert_array_equal(np.asarray(pyannet(trained, audio[:2])), np.asarray(pyannet(tuned, audio[:2])))
    again = load_segmentation(resumed)
    np.testing.assert_array_equal(np.asarray(pyannet(again, audio[:2])), np.asarray(pyannet(tuned, audio[:2])))

    bad = tmp_path / "bad.npz"
    np.savez(bad, **{"classifier/weight": np.zeros((5, 128), np.float32)})
    with pytest.raises(ModelError, match="not a segmentation-3.0"):
        load_segmentation(bad)
