"""Device block stamps from arrival times: exact spacing, the least-delayed arrival wins, drift and overflows."""

from __future__ import annotations

import numpy as np

from nodes.capture.clock import NS, ArrivalClock

RATE, FRAMES = 16_000, 320  # 20 ms blocks
BLOCK_NS = FRAMES * NS // RATE


def _run(clock: ArrivalClock, delays_ms: np.ndarray, t0: int = 5 * NS, ppm: float = 0.0) -> np.ndarray:
    """Stamp minus true capture time (ns) per block, for blocks arriving `delays_ms` after their last sample."""
    errors = []
    for k, delay in enumerate(delays_ms):
        true_start = t0 + round(k * BLOCK_NS * (1 + ppm * 1e-6))
        arrival = true_start + round(BLOCK_NS * (1 + ppm * 1e-6)) + int(delay * 1e6)
        errors.append(clock.stamp(FRAMES, arrival) - true_start)
    return np.array(errors)


def test_bursty_arrivals_give_exact_stamps_once_one_block_came_on_time():
    """Blocks arriving 0-200 ms late in bursts; one arrives 1 ms late at block 50: from then on, every stamp is
    1 ms after the truth (never before it), and consecutive stamps are exactly 20 ms apart."""
    rng = np.random.default_rng(0)
    delays = rng.uniform(5, 200, 500)
    delays[50] = 1.0
    errors = _run(ArrivalClock(RATE), delays)
    assert errors.min() >= 0
    assert set(errors[50:].tolist()) == {1_000_000}


def test_follows_a_drifting_sound_card_clock():
    """A card 100 ppm slow for 5 min (30 ms behind by the end): with a 10 s window the error stays in 1-3 ms."""
    delays = np.full(15_000, 1.0)
    errors = _run(ArrivalClock(RATE, window_s=10.0), delays, ppm=-100.0)
    assert errors.min() >= 0
    assert errors.max() < 3_000_000


def test_reset_after_overflow_restarts_the_count():
    """After lost samples the frame count means nothing: reset, and the next stamp comes from that arrival alone."""
    clock = ArrivalClock(RATE)
    _run(clock, np.full(10, 1.0))
    clock.reset()
    assert clock.stamp(FRAMES, 100 * NS) == 100 * NS - BLOCK_NS
