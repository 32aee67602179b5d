"""A beats node restarted from its checkpoint after a gap tells the beats and tempo changes of its unharmed twin
(bench/faults.py, beats kill, found it: 27 of 53 twin events lost; the restarted tracker re-locked from scratch on
onset frames off the stream's grid).

The scene graph's music (pop, 16 kHz as capture sends it) in 20 ms blocks stamped on the stream's clock, through a
beats node once whole and once checkpointed at 9.1 s and restarted at 10.14 s (the blocks between lost, as when a
node is killed while capture goes on; 10.14 s is off the 10 ms onset frame grid at 22.05 kHz). Guard, scored by
bench/faults.py's `twin_diff` from 2.5 s after the restart (its settle time) on: no twin event lost or told twice
(the same type at the same audio time, to 10 ms), at most one beat two onset frames off (`TWIN_STEP_S`: while the
tracker's posterior converges back to the twin's, which holds the evidence of the missed audio, a near tie
between two phases may resolve two frames apart); measured: 87 events, 1 beat two frames off (16.46 s, 6.3 s after
the restart; the posteriors' L1 distance is 0.55 0.6 s after the restart, 0.02 at 6.5 s, under 1e-4 from 12 s).
Before (frames off the grid, the tracker re-locking from scratch): 5 of 87 lost and 41 a step off (scored
without the beats' step: 22 lost, 24 10 ms off). With the grid and the posterior kept but tempo changes timed by
the resampler's output blocks (soxr hands out 16 to 22.05 kHz audio in bursts of ~3 blocks, whose phase a fresh
resampler does not share), both tempo changes were 10 ms off.
"""

from __future__ import annotations

import numpy as np
import soundfile as sf
import soxr

from bench.faults import twin_diff
from nodes.beats.node import BeatsNode
from stream.message import Message
from stream.runner import load_state, save_state

RATE = 16000
BLOCK = 320  # 20 ms
NS = 1_000_000_000
CHECKPOINT, RESUME = 455, 507  # blocks: 9.10 s, 10.14 s


async def run(audio: np.ndarray, tmp_path=None) -> list[dict]:
    """The events of a beats node on `audio`; with `tmp_path`, restarted from a checkpoint after a gap."""
    node = BeatsNode(name="beats")
    await node.setup()
    events = []
    for b in range(len(audio) // BLOCK):
        if tmp_path is not None and b == CHECKPOINT:
            save_state(tmp_path / "state.msgpack", node.state_dict())
        if tmp_path is not None and CHECKPOINT <= b < RESUME:
            continue
        if tmp_path is not None and b == RESUME:
            node = BeatsNode(name="beats")
            node.load_state_dict(load_state(tmp_path / "state.msgpack"))
            await node.setup()
        msg = Message.new("s", "pcm", audio[b * BLOCK:(b + 1) * BLOCK, None], sr=RATE,
                          t_capture_ns=NS + b * BLOCK * NS // RATE, t_wall=1.0 + b * 0.02)
        events += [m.header.meta for m in await node.process(msg)]
    return events


async def test_restarted_beats_node_tells_its_twins_beats_after_a_gap(data, tmp_path):
    music, rate = sf.read(data / "music" / "audio" / "tbd_easy_pop.flac", dtype="float32")
    audio = np.resize(soxr.resample(music if music.ndim == 1 else music.mean(axis=1), rate, RATE), 40 * RATE) * 0.7
    settle = RESUME * BLOCK / RATE + 2.5
    twin = [{**e, "node": "beats_ref"} for e in await run(audio)]
    restarted = await run(audio, tmp_path)
    lost, shifted, duplicated, count = twin_diff(twin + restarted, "beats", settle)
    print(f"{count} twin events from {settle:.2f} s: {lost} lost, {shifted} a step off, {duplicated} duplicated")
    assert count >= 80 and sum(e["type"] == "tempo.changed" and e["t_audio"] >= settle for e in twin) >= 2
    assert (lost, duplicated) == (0, 0) and shifted <= 1
