"""The diarization node's RTTM, appended as turns close, across a kill -9 and a restart from the checkpoint
(issue 22): every turn exactly once.

Bare node: a node checkpointed (msgpack round trip, as the runtime does) at 8 min of a synthetic conversation goes
on for 15 s, appending lines its checkpoint does not account for, and dies without closing; one rebuilt from the
checkpoint gets the windows from the kill on (the 15 s in between lost: silence, as in the graph). Its RTTM must
equal, byte for byte, that of an unharmed node fed the same windows, which equals the sorted turns it announced
(`speaker.turn`), as the RTTM written at end of stream was before. Processes: bench/faults.py kills the
diarization node of the meeting graph with SIGKILL mid-stream; the RTTM of the run holds only turns that went
out as events, none twice, and every turn announced by the restarted process.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench.faults import Fault, clip, duplicated_turns, read_events, run_fault, turns_of, warm_up
from nodes.diarization.node import DiarizationNode, DiarizationNodeConfig
from stream.message import Message
from stream.rttm import Turn, format_rttm, read_rttm
from stream.runner import load_state, save_state
from tests.reliability.meeting_windows import windows

SECONDS = 600.0
CHECKPOINT, KILL = 960, 990  # window indices: 8 min, then 15 s more


def announced(out: list[Message]) -> list[Turn]:
    """The turns of the `speaker.turn` events in `out`."""
    return [Turn(e.header.meta["start"], e.header.meta["stop"], e.header.meta["label"]) for e in out
            if e.header.meta["type"] == "speaker.turn"]


def run(node: DiarizationNode, messages: list[Message], loop: asyncio.AbstractEventLoop) -> list[Turn]:
    """Feed `messages`; the turns announced."""
    return announced([e for m in messages for e in loop.run_until_complete(node.process(m))])


def rttm_of(folder: Path) -> str:
    [path] = folder.iterdir()
    return path.read_text()


def test_restart_from_checkpoint_neither_loses_nor_repeats_a_line(tmp_path):
    config = DiarizationNodeConfig(rttm_dir=str(tmp_path / "killed"))
    received = list(windows("room", SECONDS, DiarizationNode(config).chain.geometry))
    loop = asyncio.new_event_loop()
    try:
        killed = DiarizationNode(config, "diarization")
        loop.run_until_complete(killed.setup())
        run(killed, received[:CHECKPOINT], loop)
        save_state(tmp_path / "state.msgpack", killed.state_dict())
        accounted = killed.streams["room"].rttm.written
        assert run(killed, received[CHECKPOINT:KILL], loop)  # turns closed after the checkpoint ...
        [path] = (tmp_path / "killed").iterdir()
        assert path.stat().st_size > accounted  # ... and their lines are in the file when it dies

        restarted = DiarizationNode(config, "diarization")
        restarted.load_state_dict(load_state(tmp_path / "state.msgpack"))
        loop.run_until_complete(restarted.setup())
        run(restarted, received[KILL:], loop)
        loop.run_until_complete(restarted.close())

        unharmed = DiarizationNode(DiarizationNodeConfig(rttm_dir=str(tmp_path / "unharmed")), "diarization")
        loop.run_until_complete(unharmed.setup())
        told = run(unharmed, received[:CHECKPOINT] + received[KILL:], loop)
        told += announced(loop.run_until_complete(unharmed.close()))
    finally:
        loop.close()
    text = rttm_of(tmp_path / "killed")
    assert text == rttm_of(tmp_path / "unharmed") == format_rttm("room", told)
    assert len(told) > 80 and {t.label for t in told} == {"SPEAKER_0", "SPEAKER_1"}


async def test_rttm_after_kill_of_diarization_process(tmp_path, data):
    wav = clip("dev00", 16.0, tmp_path)
    warm_up()
    fault = Fault("diarization", "kill", at_s=9.0)
    outcome = await run_fault(fault, wav, None, tmp_path / "run")
    print(outcome)
    assert outcome.exit_code == 0 and outcome.restarts["diarization"] == 1
    told = turns_of(read_events(tmp_path / "run" / "events.jsonl"), "diarization")
    [path] = (tmp_path / "run" / "rttm").iterdir()
    [written] = read_rttm(path).values()
    print(f"{len(told)} turns told, {len(written)} written")

    def key(t: Turn) -> tuple[float, float, str]:
        return round(t.start, 3), round(t.end, 3), t.label

    assert duplicated_turns(written) == 0 and len({(t.start, t.label) for t in written}) == len(written)
    assert {key(t) for t in written} <= {key(t) for t in told}  # only turns that went out as events
    after = [t for t in told if t.end > fault.at_s]  # the killed process never saw audio past at_s
    before = [t for t in told if t.end < fault.at_s - 3.0]  # checkpointed (every 1 s) long before the kill
    assert after and before
    assert {key(t) for t in after + before} <= {key(t) for t in written}
