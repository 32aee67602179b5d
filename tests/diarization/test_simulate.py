"""bench/simulate_meetings.py: the tune/report protocol's data must be what its reference says it is."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import simulate_meetings as sim  # noqa: E402


@pytest.fixture(scope="module")
def halves(data: Path) -> dict:
    return sim.split_halves(sim.speaker_groups(data))


def _tiny(halves: dict, seed: int, **kw) -> sim.Session:
    tune = halves["tune"]
    speakers = {s: tune[sim.LONG_GROUP][s][:3] for s in sorted(tune[sim.LONG_GROUP])[:2]}
    return sim.simulate("tiny", seed, speakers, 0.75, set(speakers), [], **kw)


def test_halves_are_disjoint_and_balanced(halves: dict) -> None:
    for group in halves["tune"]:
        tune, report = set(halves["tune"][group]), set(halves["report"][group])
        assert not tune & report
        assert abs(len(tune) - len(report)) <= 1
    assert len(halves["tune"][sim.LONG_GROUP]) == 5 and len(halves["report"][sim.LONG_GROUP]) == 5


def test_sessions_use_their_half_only(halves: dict) -> None:
    report = {s for spk in halves["report"].values() for s in spk}
    for _, _, speakers, minutes in sim.session_plan(sim.SETS["tune"], halves["tune"]):
        assert not set(speakers) & report and 2 <= minutes <= 10
    counts = [len(s) for _, _, s, _ in sim.session_plan(sim.SETS["report"], halves["report"])]
    assert sorted(set(counts)) == list(range(2, 13))
    dev = list(sim.session_plan(sim.SETS["tune-dev"], halves["tune"]))  # held out from segmentation training
    assert {seed for _, seed, _, _ in dev}.isdisjoint(seed for _, seed, _, _ in sim.session_plan(sim.SETS["tune"],
                                                                                                 halves["tune"]))
    assert sorted(len(s) for _, _, s, _ in dev) == list(range(2, 13))
    assert all(not set(s) & report and 2 <= m <= 4 for _, _, s, m in dev)


def test_a_short_session_runs_on_until_every_voice_has_spoken(halves: dict) -> None:
    """tune-short: 6 voices planned into 0.2 minutes (too short for six turns at the drawn lengths)."""
    tune = halves["tune"]
    short = sorted(s for g, spk in tune.items() if g != sim.LONG_GROUP for s in spk)[:6]
    every = {s: p for spk in tune.values() for s, p in spk.items()}
    s = sim.simulate("short", 1, {v: every[v] for v in short}, 0.2, set(), [], reverb=False, snr=None)
    assert {t.label for t in s.turns} == set(short)
    plan = list(sim.session_plan(sim.SETS["tune-short"], tune))
    assert sorted({len(v) for _, _, v, _ in plan}) == [3, 4, 5, 6] and all(0.35 <= m <= 1 for *_, m in plan)


def test_deterministic_for_a_seed(halves: dict) -> None:
    a, b = _tiny(halves, 5), _tiny(halves, 5)
    assert np.array_equal(a.audio, b.audio) and a.turns == b.turns
    assert not np.array_equal(a.audio[:16000 * 20], _tiny(halves, 6).audio[:16000 * 20])


def test_reference_matches_the_mix(halves: dict) -> None:
    """Without reverb and noise, reference speech has energy and reference silence has none; overlap as asked."""
    s = _tiny(halves, 3, reverb=False, snr=None, overlap=0.15)
    assert {t.label for t in s.turns} == set(sorted(halves["tune"][sim.LONG_GROUP])[:2])
    db = sim.frame_db(s.audio)
    speech = sim.speech_mask(s.turns, len(s.audio))[::sim.HOP][:len(db)]
    peak = np.percentile(db[speech], 95)
    assert np.mean(db[speech] > peak - 40) > 0.95  # speech regions are loud (pauses < 0.3 s count as speech)
    inner = speech.copy()  # silence at least 60 ms from any speech edge (fades and frame width)
    for shift in range(-6, 7):
        inner |= np.roll(speech, shift)
    assert np.all(db[~inner] < peak - 35)  # only the recordings' own noise floor
    assert np.percentile(db[~inner], 90) < peak - 55
    assert 0.05 <= sim.overlap_ratio(s.turns) <= 0.25
    assert 0.45 <= len(s.audio) / 16000 / 60 <= 0.85


def test_noise_at_the_drawn_snr(halves: dict) -> None:
    s = _tiny(halves, 4, reverb=False, snr=10.0, overlap=0.0)
    speech = sim.speech_mask(s.turns, len(s.audio))
    quiet = ~sim.dilate(speech, 800)  # 50 ms from any speech
    p_speech, p_noise = np.mean(s.audio[speech] ** 2), np.mean(s.audio[quiet] ** 2)
    assert 8.0 < 10 * np.log10(p_speech / p_noise - 1) < 12.0
