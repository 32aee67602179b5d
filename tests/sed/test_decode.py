"""Decoding score sequences into alert edges: smoothing, hysteresis, minimum duration, cooldown, the gates.

Score sequences are built by hand (one rule, hop 0.24 s), so each test states the edges it expects.
"""

from __future__ import annotations

import numpy as np
import pytest

from nodes.sed.decode import ONSET_OFFSET, Decoder, decode, events, gates, level, pool
from nodes.sed.rules import Rule

HOP = 0.24


def rule(**kw) -> Rule:
    base = dict(classes=("Dog",), indices=(0,), threshold=0.5, release=0.3, smooth=3, cooldown=2.0)
    return Rule("dog", **{**base, **kw})


def run(r: Rule, seq: list[float], gated: str | None = None) -> list:
    x = np.asarray(seq, np.float32)[:, None]
    return decode([r], x, [[gated]] * len(seq), HOP, duration=len(seq) * HOP + 0.96)


def test_one_patch_blip_is_smoothed_away():
    assert run(rule(), [0, 0, 0.9, 0, 0, 0]) == []
    assert len(events(run(rule(smooth=1), [0, 0, 0.9, 0, 0, 0]))) == 1


def test_sustained_sound_gives_one_event_with_centred_times():
    edges = run(rule(), [0] * 5 + [0.8] * 10 + [0] * 5)
    start, stop = edges
    assert (start.kind, stop.kind) == ("start", "stop")
    # the median first passes 0.5 at patch 6 (two of patches 4..6 high), centred on patch 5
    assert start.onset == pytest.approx(5 * HOP + ONSET_OFFSET) and start.decided == pytest.approx(6 * HOP + 0.96)
    assert stop.t == pytest.approx(15 * HOP + ONSET_OFFSET) and stop.score == pytest.approx(0.8)


def test_hysteresis_keeps_one_event_through_a_dip_above_release():
    seq = [0.8] * 6 + [0.4] * 4 + [0.8] * 6 + [0] * 3
    assert len(events(run(rule(), seq))) == 1
    assert len(events(run(rule(release=0.45, cooldown=5.0), seq))) == 1  # the cooldown swallows the second
    assert len(events(run(rule(release=0.45, cooldown=0.0), seq))) == 2


def test_hold_bridges_gaps_shorter_than_it_and_stops_where_the_sound_did():
    seq = [0.8] * 5 + [0.0] * 6 + [0.8] * 5 + [0.0] * 12  # a 1.44 s gap
    (one,) = events(run(rule(smooth=1, cooldown=0.0, hold=2.0), seq))
    assert one[0] == pytest.approx(ONSET_OFFSET) and one[1] == pytest.approx(16 * HOP + ONSET_OFFSET)
    assert len(events(run(rule(smooth=1, cooldown=0.0, hold=1.0), seq))) == 2
    stop = run(rule(smooth=1, cooldown=0.0, hold=2.0), seq)[-1]
    assert stop.decided == pytest.approx((16 + 9) * HOP + 0.96)  # known once 2 s of quiet have passed


def test_cooldown_holds_the_rule_then_lets_it_fire_again():
    burst = [0.9] * 4 + [0] * 3
    assert len(events(run(rule(cooldown=5.0), burst * 3))) == 1  # bursts 1.68 s apart
    assert len(events(run(rule(cooldown=5.0), burst + [0] * 20 + burst))) == 2


def test_min_duration_drops_short_candidates_and_delays_the_start():
    short = [0] * 3 + [0.9] * 4 + [0] * 4
    assert run(rule(min_duration=1.0), short) == []
    (start, _) = run(rule(min_duration=0.48), [0] * 3 + [0.9] * 8 + [0] * 4)
    assert start.decided == pytest.approx((4 + 2) * HOP + 0.96)  # two patches after the first above threshold


def test_gated_patches_never_start_an_event():
    assert run(rule(), [0.99] * 20, gated="silent") == []


@pytest.mark.parametrize("samples, reason", [
    (np.zeros(15600, np.float32), "silent"),
    (np.full(15600, 1e-5, np.float32), "silent"),  # -100 dBFS
    (np.clip(np.random.default_rng(0).normal(0, 3, 15600), -1, 1).astype(np.float32), "clipped"),
    (np.array([0.1, np.nan] * 7800, np.float32), "nan"),
    (0.1 * np.random.default_rng(0).standard_normal(15600).astype(np.float32), None),
])
def test_gate_reasons(samples, reason):
    assert gates([rule()], level(samples)) == [reason]


def test_pooling_max_top_k_and_prototypes():
    scores = np.array([[0.1, 0.9, 0.5]], np.float32)
    assert pool([rule(indices=(0, 2))], scores)[0, 0] == pytest.approx(0.5)
    assert pool([rule(classes=("a", "b", "c"), indices=(0, 1, 2), top_k=2)], scores)[0, 0] == pytest.approx(0.7)
    taught = Rule("bell", prototypes="bell.npz", examples=np.array([[1.0, 0.0], [0.0, 1.0]], np.float32),
                  counter=np.array([[1.0, 0.0]], np.float32))
    emb = np.array([[3.0, 4.0], [-3.0, -4.0]], np.float32)  # mean of the (two) nearest examples minus the counter
    np.testing.assert_allclose(pool([taught], scores.repeat(2, 0), emb)[:, 0], [0.7 - 0.6, 0.0], atol=1e-6)


def test_a_rival_class_that_scores_higher_silences_the_rule():
    knock = rule(classes=("Knock", "Tap"), indices=(0, 1), unless=("Clapping",), rivals=(2,))
    scores = np.array([[0.6, 0.1, 0.3], [0.6, 0.1, 0.7], [0.2, 0.5, 0.5]], np.float32)
    np.testing.assert_allclose(pool([knock], scores)[:, 0], [0.6, 0.0, 0.5])  # a tie keeps the rule


def test_state_dict_round_trip_mid_event_gives_the_same_edges():
    seq = np.array([0] * 4 + [0.8] * 6 + [0] * 4 + [0.9] * 4 + [0] * 20 + [0.9] * 5 + [0] * 3, np.float32)
    whole, first, second = Decoder([rule()], HOP), Decoder([rule()], HOP), Decoder([rule()], HOP)
    expected = [e for x in seq for e in whole(x[None], [None])]
    got = [e for x in seq[:7] for e in first(x[None], [None])]
    second.load_state_dict(first.state_dict())
    got += [e for x in seq[7:] for e in second(x[None], [None])]
    assert got == expected and len(expected) == 4
