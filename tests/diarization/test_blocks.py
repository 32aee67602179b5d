"""The diarisation blocks on synthetic inputs: clustering, aggregation, turns, refinement, RTTM/UEM."""

from __future__ import annotations

import numpy as np
import pytest

from nodes.diarization.aggregation import DelayedAggregation, WindowGeometry, hamming
from nodes.diarization.clustering import ClusteringConfig, OnlineClustering, unit
from nodes.diarization.pipeline import DiarizationConfig, OnlineDiarizer
from nodes.diarization.refine import ahc, eigengap_spectral
from nodes.diarization.stitching import Plan
from nodes.diarization.turns import TurnConfig, TurnTracker
from stream.errors import ConfigError
from stream.rttm import Turn, read_rttm, read_uem, write_rttm, write_uem

DIM = 32


def voices(n: int, seed: int = 0) -> np.ndarray:
    return unit(np.random.default_rng(seed).standard_normal((n, DIM)))


def noisy(voice: np.ndarray, rng: np.random.Generator, noise: float = 0.3) -> np.ndarray:
    return voice + noise * rng.standard_normal(DIM) / np.sqrt(DIM)


def window(speakers: list[int], voice_bank: np.ndarray, rng: np.random.Generator, frames: int = 50):
    """A window where local speaker j is global speaker speakers[j] (activity 1), others silent."""
    activity = np.zeros((frames, 3))
    emb = np.full((3, DIM), np.nan)
    for local, g in enumerate(speakers):
        activity[:, local] = 1.0
        emb[local] = noisy(voice_bank[g], rng)
    return activity, emb


def test_clustering_tracks_five_speakers_beyond_four():
    bank, rng = voices(5), np.random.default_rng(1)
    clustering = OnlineClustering(ClusteringConfig(delta_new=0.6, max_speakers=8, young=0.0))
    first_seen: dict[int, int] = {}
    errors = 0
    for i in range(200):
        who = list(rng.choice(5, size=rng.integers(1, 3), replace=False))
        local = list(rng.permutation(len(who)))
        order = [who[j] for j in local]
        mapping = clustering(*window(order, bank, rng))
        for j, g in enumerate(order):
            first_seen.setdefault(g, mapping[j])
            errors += mapping[j] != first_seen[g]
    assert clustering.num_speakers == 5
    assert errors == 0
    assert clustering.labels == [f"SPEAKER_{k}" for k in range(5)]


def test_a_short_far_voice_joins_the_closest_speaker_and_a_long_one_opens_a_new_one():
    bank, rng = voices(2), np.random.default_rng(4)
    clustering = OnlineClustering(ClusteringConfig(young=0.0))  # delta_new 0.7, rho_new 0.2
    assert clustering(*window([0], bank, rng)) == {0: 0}
    activity, emb = window([1], bank, rng)
    short = activity.copy()
    short[int(0.1 * len(short)):] = 0.0  # talks for 10 % of the window: too little to trust its embedding
    assert clustering(short, emb) == {0: 0}
    assert clustering.num_speakers == 1
    assert clustering(activity, emb) == {0: 1}  # the whole window: a new speaker
    assert clustering.labels == ["SPEAKER_0", "SPEAKER_1"]


def test_a_whole_window_voice_at_similarity_0_28_is_a_new_speaker():
    """delta_new 0.7 (session 7): a voice 0.72 away from every centroid opens a speaker; 0.75 merged it, and the
    simulated tune meetings with 8-12 speakers lost voices that way."""
    a, b = np.eye(DIM)[0], np.eye(DIM)[1]
    activity = np.zeros((50, 3))
    activity[:, 0] = 1.0
    first, other = np.full((3, DIM), np.nan), np.full((3, DIM), np.nan)
    first[0], other[0] = a, 0.28 * a + np.sqrt(1 - 0.28 ** 2) * b
    for delta_new, expected in ((ClusteringConfig().delta_new, 1), (0.75, 0)):
        clustering = OnlineClustering(ClusteringConfig(delta_new=delta_new, young=0.0))
        assert clustering(activity, first) == {0: 0}
        assert clustering(activity, other) == {0: expected}


def test_a_young_speaker_takes_any_voice_until_its_centroid_has_a_few_windows():
    bank, rng = voices(2), np.random.default_rng(8)
    clustering = OnlineClustering(ClusteringConfig())  # young 4.0: about five windows of one voice
    assert clustering(*window([0], bank, rng)) == {0: 0}
    assert clustering(*window([1], bank, rng)) == {0: 0}  # one window of evidence: too little to refuse a voice
    for _ in range(5):
        clustering(*window([0], bank, rng))
    assert np.linalg.norm(clustering.centroids[0]) >= 4.0
    assert clustering(*window([1], bank, rng)) == {0: 1}  # now it is a stranger
    assert clustering.labels == ["SPEAKER_0", "SPEAKER_1"]


def test_a_tail_that_sounds_like_another_speaker_goes_to_them():
    """Local speaker 0 carries voice A for most of the window and voice B in its last second (segmentation let the
    newcomer continue A's slot): the tail goes to B's speaker, the rest stays A's; a near tie moves nothing."""
    bank, rng = voices(2), np.random.default_rng(9)
    config = DiarizationConfig()
    g = config.geometry
    diarizer = OnlineDiarizer(config)
    one = np.zeros((g.frames_per_window, 3))
    one[:, 0] = 1.0
    for voice in [0] * 6 + [1] * 6:  # both voices known, each from long windows
        emb = np.full((3, 2, DIM), np.nan)
        emb[0] = noisy(bank[voice], rng)
        diarizer(one, emb, Plan(True, {}))
    a, b = (diarizer.clustering.labels.index(f"SPEAKER_{k}") for k in (0, 1))
    emb = np.full((3, 2, DIM), np.nan)
    emb[0, 0], emb[0, 1] = noisy(bank[0], rng), noisy(bank[1], rng)
    assert diarizer.clustering.tail_moves(one, emb[:, 1], {0: a}, g.tail_frames, g.resolution) == {0: b}
    step = diarizer(one, emb, Plan(True, {}))  # latency 0.5 s: the output is the window's last step
    assert step.probs[:, b].min() == 1.0 and step.probs[:, a].max() == 0.0
    emb[0, 1] = unit(bank[0] + bank[1])  # as close to both: stays
    assert diarizer.clustering.tail_moves(one, emb[:, 1], {0: a}, g.tail_frames, g.resolution) == {}


def test_two_local_speakers_never_share_a_global_one():
    bank, rng = voices(1), np.random.default_rng(2)
    clustering = OnlineClustering(ClusteringConfig(delta_new=0.6, max_speakers=4))
    mapping = clustering(*window([0, 0], bank, rng))  # same voice twice in one window: cannot-link
    assert len(set(mapping.values())) == 2


def test_max_speakers_caps_new_speakers():
    bank, rng = voices(6), np.random.default_rng(3)
    clustering = OnlineClustering(ClusteringConfig(delta_new=0.6, max_speakers=3, young=0.0))
    for g in range(6):
        mapping = clustering(*window([g], bank, rng))
        assert 0 <= mapping[0] < 3
    assert clustering.num_speakers == 3


def test_enrolled_names_and_unknowns():
    bank, rng = voices(4), np.random.default_rng(4)
    enrolled = {"alice": bank[0], "bob": bank[1]}
    clustering = OnlineClustering(ClusteringConfig(delta_new=0.6, identify_threshold=0.6, young=0.0), enrolled)
    for _ in range(20):
        for g in rng.permutation(4):
            mapping = clustering(*window([g], bank, rng))
            label = clustering.labels[mapping[0]]
            assert label == {0: "alice", 1: "bob"}.get(g, label)
            if g >= 2:
                assert label.startswith("SPEAKER_")
    assert sorted(clustering.labels) == ["SPEAKER_0", "SPEAKER_1", "alice", "bob"]


def test_inactive_and_short_speakers():
    bank, rng = voices(2), np.random.default_rng(5)
    clustering = OnlineClustering(ClusteringConfig(tau_active=0.5, rho_update=0.5, delta_new=0.6))
    activity, emb = window([0, 1], bank, rng)
    activity[:, 1] = 0.4  # below tau_active: not a speaker in this window
    assert list(clustering(activity, emb)) == [0]
    before = clustering.centroids.copy()
    activity, emb = window([0], bank, rng)
    activity[10:, 0] = 0.0  # active (max 1) but 20 % speech < rho_update: assigned, centroid kept
    assert clustering(activity, emb) == {0: 0}
    np.testing.assert_array_equal(clustering.centroids, before)


def test_clustering_state_round_trip_keeps_labels():
    bank, rng = voices(4), np.random.default_rng(6)
    windows = [window(list(rng.choice(4, size=2, replace=False)), bank, rng) for _ in range(60)]
    config = ClusteringConfig(delta_new=0.6)
    whole = OnlineClustering(config)
    expected = [whole(*w) for w in windows]
    first = OnlineClustering(config)
    got = [first(*w) for w in windows[:30]]
    restarted = OnlineClustering(config)  # a new process: state comes back from the checkpoint only
    restarted.load_state_dict({k: (v.tolist() if isinstance(v, np.ndarray) else v)
                               for k, v in first.state_dict().items()})
    got += [restarted(*w) for w in windows[30:]]
    assert got == expected
    assert restarted.labels == whole.labels


def test_config_rejects_out_of_range():
    with pytest.raises(ConfigError, match="delta_new"):
        ClusteringConfig(delta_new=3.0)
    with pytest.raises(ConfigError, match="latency"):
        WindowGeometry(latency=11.0)


@pytest.mark.parametrize("latency", [0.5, 1.0, 2.5, 5.0])
def test_aggregation_averages_exactly_the_windows_seen(latency):
    g = WindowGeometry(duration=5.0, step=0.5, latency=latency, resolution=0.1)
    rng = np.random.default_rng(7)
    n_windows = 30
    windows = rng.random((n_windows, g.frames_per_window, 2))
    agg = DelayedAggregation(g)
    outputs = np.concatenate([agg(w) for w in windows])
    taper = hamming(g.frames_per_window)
    # window k covers grid frames [(k+1)*fps - fpw, (k+1)*fps); output block k covers (k+1 - latency_steps)*fps on
    fps, fpw, lag = g.frames_per_step, g.frames_per_window, g.latency_steps
    for block in range(n_windows):
        for i in range(fps):
            frame = (block + 1 - lag) * fps + i
            num = den = 0.0
            for k in range(block + 1):  # windows that exist when the block is due
                offset = frame - ((k + 1) * fps - fpw)
                if 0 <= offset < fpw:
                    num, den = num + taper[offset] * windows[k, offset], den + taper[offset]
            np.testing.assert_allclose(outputs[block * fps + i], num / den, rtol=1e-12)


def test_aggregation_grows_speakers():
    g = WindowGeometry(duration=1.0, step=0.5, latency=1.0, resolution=0.1)
    agg = DelayedAggregation(g)
    assert agg(np.ones((10, 1))).shape == (5, 1)
    out = agg(np.ones((10, 3)))
    assert out.shape == (5, 3)
    np.testing.assert_allclose(out[:, 0], 1.0)
    assert np.all((out[:, 1:] > 0.05) & (out[:, 1:] < 0.95))  # seen by one of the two windows covering them


def test_turn_hysteresis_and_edges():
    tracker = TurnTracker(TurnConfig(onset=0.6, offset=0.4), resolution=0.1)
    probs = np.array([[0.1], [0.7], [0.5], [0.45], [0.3], [0.9]])
    edges = tracker(probs, t0=1.0)
    assert [(e.kind, round(e.t, 3)) for e in edges] == [("start", 1.1), ("stop", 1.4), ("start", 1.5)]
    assert edges[1].confidence == pytest.approx((0.7 + 0.5 + 0.45) / 3)
    assert [(e.kind, e.t) for e in tracker.close_all(2.0)] == [("stop", 2.0)]
    assert tracker.turns(["A"]) == [Turn(1.1, 1.4, "A"), Turn(1.5, 2.0, "A")]


def test_ahc_and_spectral_find_the_number_of_speakers():
    bank, rng = voices(4, seed=8), np.random.default_rng(9)
    truth = rng.integers(0, 4, size=120)
    emb = np.stack([noisy(bank[t], rng, 0.5) for t in truth])
    for labels in (ahc(emb, 0.6), eigengap_spectral(emb, max_speakers=10)):
        assert len(set(labels)) == 4
        pairs = {(a, b) for a, b in zip(truth, labels)}
        assert len(pairs) == 4  # one cluster per speaker, no mixing


def test_refine_counts_speakers_per_frame_and_drops_one_window_blips():
    from nodes.diarization.refine import WindowRecord, speaker_count, top_speakers

    n = 20  # frames per window; windows every 5 frames -> each frame is covered by 4 windows
    truth = np.zeros((60, 2))
    truth[10:30, 0] = truth[25:50, 1] = 1  # two speakers, overlapping on frames 25-29
    records = []
    for first in range(-15, 60, 5):
        act = np.zeros((n, 2))
        lo, hi = max(first, 0), min(first + n, 60)
        act[lo - first:hi - first] = truth[lo:hi]
        if first == 40:
            act[15:, 0] = 1  # one window hears speaker 0 at its right edge (frames 55-59), no other does
        records.append(WindowRecord(first, act, None, {}, {}))
    count = speaker_count(records, 60)
    assert np.array_equal(count, truth.sum(axis=1))
    probs = np.stack([truth[:, 0] + 0.1, truth[:, 1] + 0.05], axis=1)
    probs[55:, 0] = 0.3  # the blip survives a 0.25 threshold on the mean, not the count
    assert np.array_equal(top_speakers(probs, count), truth.astype(bool))


def test_rttm_and_uem_round_trip(tmp_path):
    turns = [Turn(3.0, 4.5, "MÉO069"), Turn(0.25, 1.0, "SPEAKER_0")]
    write_rttm(tmp_path / "a.rttm", "meeting", turns)
    assert read_rttm(tmp_path / "a.rttm") == {"meeting": sorted(turns)}
    write_uem(tmp_path / "a.uem", {"meeting": [(0.0, 30.0)]})
    assert read_uem(tmp_path / "a.uem") == {"meeting": [(0.0, 30.0)]}


def test_diarizer_restart_mid_stream_keeps_labels_and_turns():

    config = DiarizationConfig(clustering=ClusteringConfig(delta_new=0.6))
    g = config.geometry
    bank, rng = voices(3, seed=10), np.random.default_rng(11)
    # a conversation on the grid: who talks in each 0.5 s step, then the windows that see it
    steps = np.repeat(rng.integers(0, 4, size=30), 3)  # 3 == silence, turns of 1.5 s
    frames = np.zeros((len(steps) * g.frames_per_step, 3))
    for i, who in enumerate(steps):
        if who < 3:
            frames[i * g.frames_per_step:(i + 1) * g.frames_per_step, who] = 1.0
    padded = np.concatenate([np.zeros((g.frames_per_window - g.frames_per_step, 3)), frames])
    windows = []
    for k in range(len(steps)):
        act = padded[k * g.frames_per_step: k * g.frames_per_step + g.frames_per_window]
        perm = rng.permutation(3)  # local speaker order is arbitrary per window
        emb = np.stack([noisy(bank[p], rng) if act[:, p].max() > 0 else np.full(DIM, np.nan) for p in perm])
        windows.append((act[:, perm], np.stack([emb, emb], axis=1)))  # [local, whole / tail, dim]

    def feed(diarizer, part):
        for act, emb in part:
            diarizer(act, emb, diarizer.plan(act))

    whole = OnlineDiarizer(config)
    feed(whole, windows)
    whole.finish(len(steps) * g.step)
    first = OnlineDiarizer(config)
    feed(first, windows[:40])
    restarted = OnlineDiarizer(config)
    restarted.load_state_dict(first.state_dict())
    feed(restarted, windows[40:])
    restarted.finish(len(steps) * g.step)
    assert restarted.turns() == whole.turns()
    assert len({t.label for t in whole.turns()}) == len(set(steps) - {3})
    taking = OnlineDiarizer(config)  # the live node takes turns as their place is final (its RTTM lines)
    taken = []
    for part in windows:
        feed(taking, [part])
        taken += taking.take_turns()
    taking.finish(len(steps) * g.step)
    assert taken + taking.take_turns() == whole.turns() and taking.turns() == []


def test_window_buffer_pads_start_and_end_with_silence():
    from nodes.diarization.pipeline import WindowBuffer

    g = WindowGeometry(duration=1.0, step=0.5)
    buffer = WindowBuffer(g)
    audio = np.arange(1, 16000 * 1.2 + 1, dtype=np.float32)  # 1.2 s, no zeros
    windows = buffer.push(audio[:5000]) + buffer.push(audio[5000:]) + buffer.flush()
    assert len(windows) == 3  # windows end at 0.5, 1.0 and 1.5 s
    assert buffer.duration == pytest.approx(1.2)
    assert buffer.padding(0) == 8000 and buffer.padding(1) == 0
    np.testing.assert_array_equal(windows[0][:8000], 0)
    np.testing.assert_array_equal(windows[0][8000:], audio[:8000])
    np.testing.assert_array_equal(windows[2][:11200], audio[8000:])
    np.testing.assert_array_equal(windows[2][11200:], 0)


def test_reclustering_splits_voices_the_online_pass_merged():
    """Three voices whose embeddings are 0.8 apart in cosine distance: delta_new = 1.0 (diart's) merges them into
    one speaker; the periodic re-clustering of what was seen separates them again for the windows to come."""
    rng = np.random.default_rng(0)
    voices = np.linalg.qr(rng.standard_normal((16, 3)))[0].T  # 3 orthogonal unit directions
    shared = np.ones(16) / 8.0
    config = ClusteringConfig(delta_new=1.0, recluster_every=20, history=500)  # the default is 0 (off)
    clustering = OnlineClustering(config, recluster=lambda emb: ahc(emb, 0.5))
    activity = np.ones((50, 1))
    labels = []
    for w in range(300):
        v = w // 10 % 3  # each voice talks for 10 windows, in turn
        emb = voices[v] + shared + 0.05 * rng.standard_normal(16)
        labels.append((v, clustering(activity, emb[None])[0]))
    late = labels[-60:]
    assert len({k for _, k in late}) == 3
    assert all(len({k for v2, k in late if v2 == v}) == 1 for v in range(3))
    assert sum(clustering.alive) == 3
