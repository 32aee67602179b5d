"""Thresholds from synthetic trial scores with known answers, and trial-list parsing."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from nodes.speakers.calibration import calibrate, error_rates, read_trials, threshold_at_eer, threshold_at_far
from stream.errors import ConfigError


def test_threshold_at_far_exact():
    """Impostors 0.00 .. 0.99: at FAR 5% the five highest (0.95 .. 0.99) pass, so the threshold is 0.945."""
    impostor = np.arange(100) / 100
    t = threshold_at_far(impostor, 0.05)
    assert t == pytest.approx(0.945)
    assert error_rates(np.array([]), impostor, t)[0] == pytest.approx(0.05)
    assert threshold_at_far(impostor, 0.0) > 0.99


def test_threshold_at_eer_gaussians():
    """Targets N(1, 1), impostors N(-1, 1): EER = Phi(-1) = 15.87% at threshold 0."""
    rng = np.random.default_rng(0)
    t, eer = threshold_at_eer(rng.normal(1, 1, 100_000), rng.normal(-1, 1, 100_000))
    assert eer == pytest.approx(norm.cdf(-1), abs=0.004)
    assert abs(t) < 0.03


def test_threshold_at_eer_separable():
    t, eer = threshold_at_eer(np.array([0.8, 0.9]), np.array([0.1, 0.2, 0.3]))
    assert eer == 0.0
    assert 0.3 < t <= 0.8


def test_read_trials(tmp_path):
    (tmp_path / "trials.txt").write_text("# label enrol test\n1 a.flac b.flac\nnontarget a.flac /x/c.wav\n\n")
    trials = read_trials(tmp_path / "trials.txt")
    assert [t.target for t in trials] == [True, False]
    assert trials[0].enrol == tmp_path / "a.flac"
    assert str(trials[1].test) == "/x/c.wav"
    (tmp_path / "bad.txt").write_text("yes a.flac b.flac\n")
    with pytest.raises(ConfigError, match="bad.txt:1"):
        read_trials(tmp_path / "bad.txt")
    with pytest.raises(ConfigError, match="at most|must be in"):
        threshold_at_far(np.ones(3), 1.5)


def test_calibrate_records_operating_point():
    """Targets 0.6 .. 0.99, impostors 0.0 .. 0.79: at FAR 10% the threshold is 0.715 and 12 of 40 targets fall
    below it (0.60 .. 0.71); the EER point is where the 20 overlapping scores split evenly."""
    target, impostor = np.arange(60, 100) / 100, np.arange(80) / 100
    scores = np.concatenate([target, impostor])
    labels = np.concatenate([np.ones(40, bool), np.zeros(80, bool)])
    at_far = calibrate(scores, labels, far=0.1, snorm=False, trials="t.txt")
    assert at_far.value == pytest.approx(0.715)
    assert (at_far.far, at_far.frr) == (pytest.approx(0.1), pytest.approx(12 / 40))
    at_eer = calibrate(scores, labels, far=None, snorm=False, trials="t.txt")
    assert at_eer.method == "eer"
    assert abs(at_eer.far - at_eer.frr) <= 1 / 40
    only_impostors = calibrate(impostor, np.zeros(80, bool), far=0.05, snorm=True, trials="t.txt")
    assert only_impostors.frr is None and only_impostors.far == pytest.approx(0.05)
