"""kill -9 of the segmentation node mid-stream in the meeting graph (configs/meeting.toml on the first 20 s of
AMI dev00 at real-time pace, plus a twin VAD node; bench/faults.py runs every node kind x {kill, 5 s SIGSTOP}).

Guards: the supervisor restarts the node once (no other node restarts) and it is ready again within 15 s; the
audio it missed meanwhile is counted as dropped (>= 1 s of 20 ms blocks), none of the events on the way to the
sinks is lost (sinks' dropped count 0); scored against `stream diarize --latency 0.5` on the audio the graph
received (the missed span silenced), from 2.5 s after the recovery: no relabelling (>= 90 % of speech frames with
the same labels), no reference turn lost, no turn told twice; the VAD node's decisions equal its unharmed twin's.
"""

from __future__ import annotations

from bench.faults import Fault, clip, reference_turns, run_fault, warm_up


async def test_meeting_graph_survives_kill_of_segmentation(tmp_path, data):
    wav = clip("dev00", 20.0, tmp_path)
    warm_up()
    outcome = await run_fault(Fault("segmentation", "kill", at_s=6.0), wav, reference_turns(wav, tmp_path / "ref"),
                              tmp_path / "run")
    print(outcome)
    assert outcome.exit_code == 0
    assert outcome.restarts == {"capture": 0, "segmentation": 1, "diarization": 0, "vad_ref": 0, "vad": 0,
                                "sinks": 0}
    assert outcome.recovered_s < 15.0
    assert outcome.dropped["segmentation"] >= 50 and outcome.sink_lost == 0
    assert outcome.agreement >= 0.9 and not outcome.relabelled
    assert (outcome.lost, outcome.duplicated, outcome.vad_lost, outcome.vad_duplicated) == (0, 0, 0, 0)
    assert outcome.max_queue <= 64
