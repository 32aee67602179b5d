"""Fault injection, one node kind at a time, in the default graphs (bench/RESULTS.md, "## Reliability: faults and soak").

Meeting graph (capture, segmentation, diarization, vad, sinks): configs/meeting.toml on an AMI clip at real-time
pace (capture -> segmentation -> diarization, capture -> vad, JSONL sink), plus "vad_ref", a twin of the VAD node
that is never harmed. Scene graph (sed, beats, chords): the sound-event and music nodes of configs/demo.toml on
pop music with a smoke alarm mixed in from 14 s (`scene_clip`), sed with `sound.tags` every second, plus
`<node>_ref`, an unharmed twin of the node hit. Mid-stream one node is hit:
`kill` (SIGKILL; the supervisor restarts it from its checkpoint) or `stop` (SIGSTOP for `--stop-s`, then
SIGCONT; a process silent for the graph's `hang_s`, 10 s by default, is taken for a hang: the supervisor kills and
restarts it; `--hang-s` under `--stop-s` runs that path).
Each run is scored against what the same audio gives unharmed:
- turns: the diarization node's speaker.turn events against `stream diarize --latency 0.5` on the same file
  (what the live graph emits unharmed, tests/meeting): `identical` (same turns, boundaries within a frame),
  `agreement` (frames with the same labels), `relabelled` (agreement < 0.9),
  `lost` (reference turns of 0.5 s or more that no output turn of the same label covers half of),
  `duplicated` (output turns of one label overlapping by more than a frame: one turn told twice);
- twin: the events of the VAD node (meeting graph) or of the node hit (scene graph) against its twin's, keyed by
  type, audio time and content (`twin lost`: the twin has it and the node not, e.g. an event at a shifted time;
  `a step off`: a decision one frame early or late (VAD 32 ms, chords 93 ms, beats two 10 ms onset frames), shown,
  not lost: a restarted tracker lacks the audio it missed as context; `twin duplicated`);
- transport: messages counted dropped per node (`stream_messages_total{result="dropped"}`: ZeroMQ drops and
  the outage of a killed node, by sequence number), events lost on the way to the sinks (the sinks node's
  dropped count), the largest queue depth sampled (bound: the runner's 64);
- recovery: from the end of the fault (the kill, or SIGCONT) until the node runs again (at once when its process
  lives on, else when its new process is ready); restarts; the graph's exit code.
Turns and twin events are scored from `SETTLE_S` after the recovery. A restarted node gets what it missed
replayed by its upstreams (up to the graph's `replay_s`, 10 s: stream/transport.py), so a restarted segmentation
or diarization node is scored against the unharmed reference (it must keep every label it had). Only a restarted
capture loses audio: it skips its downtime as live audio would, so then the reference is `stream diarize` on the
file with the outage (fault to recovery) silenced: what the chain received, so a speaker first heard in the lost
span is no error.

    .venv/bin/python -m bench.faults [--nodes capture,segmentation,diarization,vad,sinks,sed,beats,chords] [--faults kill,stop]
                                     [--clip dev00] [--at 10] [--stop-s 5] [--hang-s 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import soundfile as sf

from nodes.beats.onset import OnsetConfig
from nodes.chords.node import FRAME_S as CHORD_FRAME_S
from stream.graph import NodeEntry, Supervisor, check, load_graph, with_source
from stream.metrics import run_registry
from stream.paths import REPO_ROOT, data_dir
from stream.rttm import Turn, read_rttm

FRAME = 0.02  # s, the diarisation output grid
MIN_TURN_S = 0.5  # s: shorter turns are scored by frame agreement only
SETTLE_S = 2.5  # s after a fault for a restarted clustering node to stitch its speakers back (tests/meeting)
NODES = ("capture", "segmentation", "diarization", "vad", "sinks", "sed", "beats", "chords")
SCENE_NODES = ("sed", "beats", "chords")  # hit in the scene graph (scene_graph), the others in the meeting graph
FEEDS_TURNS = ("capture",)  # a restart of these loses the audio of its outage (others get it replayed)
WARM_UP = """
import asyncio
from nodes.segmentation.node import SegmentationNode
from nodes.vad.node import VadNode
asyncio.run(SegmentationNode().setup())
asyncio.run(VadNode().setup())
"""


@dataclass(frozen=True)
class Fault:
    node: str  # node name in the meeting graph
    action: str  # "kill" | "stop"
    at_s: float  # s of audio when it strikes
    stop_s: float = 5.0  # s a "stop" lasts


@dataclass
class Outcome:
    fault: Fault
    exit_code: int = -1
    restarts: dict[str, int] = field(default_factory=dict)
    recovered_s: float = float("nan")
    audio_lost_s: float = 0.0  # s of audio no node received (a restart upstream of the models), scored as silence
    identical: bool = False
    agreement: float = float("nan")
    relabelled: bool = True
    lost: int = -1
    duplicated: int = -1
    twin_lost: int = -1  # events of the twin-checked node (vad; in the scene graph the node hit) its twin has
    twin_duplicated: int = -1  # and it has not, or has twice, from the settle time on
    twin_events: int = 0  # events of the twin from the settle time on (what twin_lost is out of)
    twin_shifted: int = 0  # told one decision step off (twin_diff), not lost
    dropped: dict[str, float] = field(default_factory=dict)
    sink_lost: float = float("nan")
    max_queue: float = float("nan")
    turns: int = 0

    @property
    def survived(self) -> bool:
        """Recovered with nothing relabelled, lost or duplicated (drops during a kill are counted, allowed)."""
        return (self.exit_code == 0 and not self.relabelled and self.lost == 0 and self.duplicated == 0
                and self.twin_lost == 0 and self.twin_duplicated == 0 and self.recovered_s < 10.0)


def clip(name: str, seconds: float | None, folder: Path) -> Path:
    """The AMI clip `name`, or its first `seconds` as a WAV in `folder`."""
    path = data_dir() / "diarization" / "ami" / f"{name}.flac"
    if seconds is None:
        return path
    audio, rate = sf.read(path, dtype="float32")
    cut = folder / f"{name}-{seconds:g}s.wav"
    sf.write(cut, audio[: round(seconds * rate)], rate)
    return cut


def warm_up() -> None:
    """Compile the model shapes into the persistent cache, as a user's first run does (node start-up in seconds)."""
    subprocess.run([sys.executable, "-c", WARM_UP], check=True, cwd=REPO_ROOT)


def silenced(wav: Path, start_s: float, end_s: float, folder: Path) -> Path:
    """`wav` with [start_s, end_s) silenced: the audio a graph received when that span was lost."""
    audio, rate = sf.read(wav, dtype="float32")
    audio[round(start_s * rate): round(end_s * rate)] = 0.0
    path = folder / f"{wav.stem}.wav"  # same stem: same RTTM uri
    sf.write(path, audio, rate)
    return path


def reference_turns(wav: Path, folder: Path) -> list[Turn]:
    """What the live graph emits unharmed: `stream diarize --latency 0.5` on the same file."""
    subprocess.run([sys.executable, "-m", "stream.cli", "diarize", str(wav), "--latency", "0.5", "--out",
                    str(folder)], check=True, cwd=REPO_ROOT, capture_output=True)
    return read_rttm(folder / f"{wav.stem}.rttm")[wav.stem]


def scene_clip(seconds: float, folder: Path) -> Path:
    """`seconds` of pop music (beats, chords) with a smoke alarm (sound events) mixed in from 14 s: the audio of
    the scene graph; the events after a fault at 10 s include every node's."""
    music, rate = sf.read(data_dir() / "music" / "audio" / "tbd_easy_pop.flac", dtype="float32")
    alarm, _ = sf.read(data_dir() / "sed" / "dev" / "clips" / "smoke_alarm" / "audioset_1WFLYqsLvv0_0.flac",
                       dtype="float32")
    audio = np.resize(music if music.ndim == 1 else music.mean(axis=1), round(seconds * rate))
    at = round(14.0 * rate)
    alarm = alarm[: len(audio) - at]
    audio[at: at + len(alarm)] += alarm
    path = folder / "scene.wav"
    sf.write(path, np.clip(audio * 0.7, -1.0, 1.0), rate)
    return path


def scene_graph(wav: Path, out: Path, twin: str):
    """The sound-event and music nodes of configs/demo.toml on `wav` (sed with `sound.tags` every second, beats,
    chords), an unharmed twin `<twin>_ref` of the node hit, a JSONL sink."""
    demo = load_graph(REPO_ROOT / "configs" / "demo.toml")
    graph = with_source(replace(demo, nodes=tuple(n for n in demo.nodes if n.kind in ("capture", *SCENE_NODES))),
                        str(wav))
    nodes = []
    for node in graph.nodes:
        if node.name == "sed":
            node = replace(node, config={**node.config, "tags_every": 1.0})
        nodes.append(node)
        if node.name == twin:
            nodes.append(replace(node, name=f"{twin}_ref"))
    nodes.append(NodeEntry("sinks", "stream.sinks.node:SinksNode",
                           {"sinks": [{"kind": "jsonl", "path": str(out / "events.jsonl")}]},
                           tuple(n.name for n in nodes if n.kind != "capture")))
    graph = replace(graph, nodes=tuple(nodes), metrics_port=0)
    check(graph)
    return graph


def meeting_graph(wav: Path, out: Path):
    """configs/meeting.toml on `wav`, a "vad_ref" twin of the VAD node, a JSONL sink, RTTMs in `out`."""
    graph = with_source(load_graph(REPO_ROOT / "configs" / "meeting.toml"), str(wav))
    nodes = []
    for node in graph.nodes:
        if node.name == "diarization":
            node = replace(node, config={**node.config, "rttm_dir": str(out / "rttm")})
        if node.name == "vad":
            nodes.append(replace(node, name="vad_ref"))
        if node.name == "sinks":
            node = NodeEntry("sinks", node.kind, {"sinks": [{"kind": "jsonl", "path": str(out / "events.jsonl")}]},
                             (*node.inputs, "vad_ref"))
        nodes.append(node)
    graph = replace(graph, nodes=tuple(nodes), metrics_port=0)
    check(graph)
    return graph


class Metrics:
    """A run's multiprocess metric files, read afresh on each call."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def get(self, name: str, **labels: str) -> float:
        registry = run_registry(self.directory)
        return registry.get_sample_value(name, labels) or 0.0


def read_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def turns_of(events: list[dict], node: str) -> list[Turn]:
    return sorted(Turn(e["start"], e["stop"], e["label"]) for e in events
                  if e["type"] == "speaker.turn" and e["node"] == node)


def same_turns(ours: list[Turn], theirs: list[Turn]) -> bool:
    return len(ours) == len(theirs) and all(
        a.label == b.label and abs(a.start - b.start) <= FRAME + 1e-3 and abs(a.end - b.end) <= FRAME + 1e-3
        for a, b in zip(sorted(ours), sorted(theirs)))


def agreement(a: list[Turn], b: list[Turn], start: float, end: float) -> float:
    """Fraction of frames with speech in either where both have exactly the same labels active."""
    times = np.arange(start, end, FRAME) + FRAME / 2
    frames = [(frozenset(t.label for t in a if t.start <= x < t.end), frozenset(t.label for t in b if t.start <= x < t.end))
              for x in times]
    pairs = [(x, y) for x, y in frames if x or y]
    return sum(x == y for x, y in pairs) / max(1, len(pairs))


def lost_turns(ours: list[Turn], reference: list[Turn], start: float) -> int:
    """Reference turns of `MIN_TURN_S` or more from `start` on that no output turn of the same label covers half of
    (shorter ones are within the chain's boundary jitter: `agreement` scores them)."""
    def covered(r: Turn) -> float:
        return sum(max(0.0, min(r.end, t.end) - max(r.start, t.start)) for t in ours if t.label == r.label)
    return sum(covered(r) < 0.5 * (r.end - r.start) for r in reference
               if r.start >= start and r.end - r.start >= MIN_TURN_S)


def duplicated_turns(ours: list[Turn]) -> int:
    """Pairs of turns of one label overlapping by more than a frame: a turn told twice."""
    return sum(a.label == b.label and min(a.end, b.end) - max(a.start, b.start) > FRAME
               for i, a in enumerate(ours) for b in ours[i + 1:])


# a node's decision step: an event one step off is shifted. Beats: two onset frames (20 ms); a restarted beat
# tracker's posterior over tempo and phase converges back to its twin's over seconds (the twin's holds the missed
# audio), and a near tie between two phases meanwhile may put a beat two frames off (tests/faults/test_beats_gap.py)
TWIN_STEP_S = {"vad": 0.032, "chords": CHORD_FRAME_S, "beats": 2 * OnsetConfig().hop / OnsetConfig().rate}


def twin_diff(events: list[dict], node: str, start: float) -> tuple[int, int, int, int]:
    """(lost, shifted, duplicated, twin's count): events of `node` against its unharmed twin `<node>_ref`, from
    audio time `start` on, keyed by type, audio time (10 ms) and what they say (speech, chord, rule, beat or not).
    An event of the twin's that `node` tells one decision step (`TWIN_STEP_S`) early or late is `shifted`: a
    restarted tracker with state (VAD's LSTM, the chords' tuning and Viterbi, the beats' posterior) lacks the
    audio it missed as context, and its state converges over seconds, so a decision may move by a frame (beats:
    two); any other miss, or a larger shift, is lost."""
    def decisions(name: str) -> list[tuple]:
        return [(e["type"], round(e["t_audio"], 2), e.get("speech"), e.get("chord"), e.get("rule"))
                for e in events if e.get("node") == name and "t_audio" in e and e["t_audio"] >= start]
    ours, ref = decisions(node), decisions(f"{node}_ref")
    step = TWIN_STEP_S.get(node, 0.0)
    missing, spare = set(ref) - set(ours), set(ours) - set(ref)
    shifted = 0
    for kind, t, *what in sorted(missing, key=lambda e: e[1]):
        near = [e for e in spare if e[0] == kind and list(e[2:]) == what and abs(e[1] - t) <= step + 0.01]  # times rounded to 10 ms
        if near:
            spare.remove(min(near, key=lambda e: abs(e[1] - t)))
            shifted += 1
    return len(missing) - shifted, shifted, len(ours) - len(set(ours)), len(set(ref))


async def strike(supervisor: Supervisor, fault: Fault, events: Path) -> tuple[float, int]:
    """Wait until `fault.at_s` of audio has been captured, then hit the node; returns when the fault ended
    (Unix time of the kill, or of SIGCONT) and the pid it hit."""
    while not (first := read_events(events)):
        await asyncio.sleep(0.05)
    t0 = first[0]["t_capture"] - first[0]["t_audio"]
    await asyncio.sleep(max(0.0, t0 + fault.at_s - time.time()))
    pid = supervisor.procs[fault.node].pid
    if fault.action == "kill":
        os.kill(pid, signal.SIGKILL)
        return time.time(), pid
    os.kill(pid, signal.SIGSTOP)
    await asyncio.sleep(fault.stop_s)
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass  # killed as hung meanwhile
    return time.time(), pid


async def watch(supervisor: Supervisor, metrics: Metrics, node: str, names: list[str],
                samples: dict[str, list[float]], back: list[tuple[float, int, str]]) -> None:
    """Every 0.1 s: each node's queue depth, and (Unix time, pid, state) of the faulted node."""
    while True:
        proc = supervisor.procs.get(node)
        alive = proc is not None and proc.returncode is None
        back.append((time.time(), proc.pid if alive else 0, supervisor.states.get(node, "") if alive else ""))
        for name in names:
            samples.setdefault(name, []).append(metrics.get("stream_queue_depth", node=name))
        await asyncio.sleep(0.1)


def recovery(back: list[tuple[float, int, str]], ended_at: float, pid: int, restarted: bool) -> float:
    """s from the end of the fault until the node runs again: at once if a stopped process lives on, else when
    its new process is ready (a stopped process killed as hung may still be sampled alive after SIGCONT: its
    outage lasts until the new one is ready)."""
    for t, now_pid, state in back:
        if t >= ended_at and state in ("ready", "done") and (now_pid != pid or not restarted):
            return max(0.0, t - ended_at)
    return float("nan")


async def run_fault(fault: Fault, wav: Path, reference: list[Turn] | None, folder: Path,
                    hang_s: float | None = None) -> Outcome:
    """One run of the meeting graph on `wav` with `fault` (and the graph's `hang_s` when given); scored as the
    module docstring says (against `reference`, the turns of `wav` unharmed, computed here when None and needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    scene = fault.node in SCENE_NODES
    graph = scene_graph(wav, folder, fault.node) if scene else meeting_graph(wav, folder)
    if hang_s is not None:
        graph = replace(graph, hang_s=hang_s)
    supervisor = Supervisor(graph, folder / "run")
    metrics = Metrics(folder / "run" / "metrics")
    samples: dict[str, list[float]] = {}
    back: list[tuple[float, int, str]] = []
    run = asyncio.ensure_future(supervisor.run(duration_s=sf.info(wav).duration + 120))
    sampler = asyncio.ensure_future(watch(supervisor, metrics, fault.node, [n.name for n in graph.nodes], samples,
                                          back))
    outcome = Outcome(fault)
    try:
        ended_at, pid = await asyncio.wait_for(strike(supervisor, fault, folder / "events.jsonl"), 90)
        with contextlib.suppress(asyncio.TimeoutError):  # a graph that cannot finish is stopped and scored
            outcome.exit_code = await asyncio.wait_for(asyncio.shield(run), sf.info(wav).duration + 120)
    finally:
        if sampler.done():  # it ends only when cancelled: an error in it must not pass as "never recovered"
            sampler.result()
        sampler.cancel()
        if not run.done():
            supervisor.stopping.set()
            await run
    events = read_events(folder / "events.jsonl")
    t0 = next(e["t_capture"] - e["t_audio"] for e in events)
    outcome.restarts = dict(supervisor.restarts)
    outcome.recovered_s = recovery(back, ended_at, pid, outcome.restarts[fault.node] > 0)
    end_s = sf.info(wav).duration
    recovered_at = ended_at - t0 + outcome.recovered_s if outcome.recovered_s == outcome.recovered_s else end_s
    outcome.dropped = {n.name: metrics.get("stream_messages_total", node=n.name, result="dropped") for n in graph.nodes}
    settle = recovered_at + SETTLE_S
    outcome.sink_lost = outcome.dropped["sinks"]
    outcome.max_queue = max(depth for series in samples.values() for depth in series)
    outcome.twin_lost, outcome.twin_shifted, outcome.twin_duplicated, outcome.twin_events = twin_diff(
        events, fault.node if scene else "vad", settle)
    if scene:  # no turns to score
        outcome.relabelled, outcome.lost, outcome.duplicated = False, 0, 0
        return outcome
    if outcome.restarts[fault.node] and fault.node in FEEDS_TURNS:  # score against what the chain received
        struck = ended_at - (fault.stop_s if fault.action == "stop" else 0.0)
        lost = (struck - t0, recovered_at)
        outcome.audio_lost_s = lost[1] - lost[0]
        reference = reference_turns(silenced(wav, *lost, folder), folder / "reference")
    elif reference is None:
        reference = reference_turns(wav, folder / "reference")
    turns = turns_of(events, "diarization")
    outcome.turns = len(turns)
    outcome.identical = same_turns(turns, reference)
    outcome.agreement = agreement(turns, reference, settle, max(t.end for t in reference) + 1.0)
    outcome.relabelled = outcome.agreement < 0.9
    outcome.lost = lost_turns(turns, reference, settle)
    outcome.duplicated = duplicated_turns(turns)
    return outcome


def row(o: Outcome) -> str:
    dropped = sum(v for k, v in o.dropped.items() if k != "sinks")
    return (f"| {o.fault.node} | {o.fault.action} | {o.exit_code} | {sum(o.restarts.values())} | {o.recovered_s:.2f} | "
            f"{o.audio_lost_s:.1f} | "
            f"{'yes' if o.identical else 'no'} | {o.agreement:.3f} | {o.lost} | {o.duplicated} | "
            f"{o.twin_lost} of {o.twin_events} ({o.twin_shifted} a step off) | {o.twin_duplicated} | {dropped:.0f} | {o.sink_lost:.0f} | {o.max_queue:.0f} | "
            f"{'yes' if o.survived else 'NO'} |")


HEADER = ("| node | fault | exit | restarts | recovered (s) | audio lost (s) | turns identical | agreement | turns lost | turns dup. | "
          "twin events lost | twin dup. | msgs dropped (counted) | events lost to sinks | max queue | survived |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", default=",".join(NODES))
    parser.add_argument("--faults", default="kill,stop")
    parser.add_argument("--clip", default="dev00")
    parser.add_argument("--at", type=float, default=10.0, help="s of audio when the fault strikes")
    parser.add_argument("--stop-s", type=float, default=5.0)
    parser.add_argument("--hang-s", type=float, help="the graphs' hang_s (default: theirs, 10 s)")
    parser.add_argument("--json", type=Path, help="write the outcomes here")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="stream-faults-"))
    wav = clip(args.clip, None, folder)
    scene = scene_clip(sf.info(wav).duration, folder)
    warm_up()
    reference = reference_turns(wav, folder / "reference")
    print(f"{wav.name}: {len(reference)} reference turns; fault at {args.at:g} s of audio; stop {args.stop_s:g} s; "
          f"hang_s {args.hang_s or 'default'}; load {os.getloadavg()[0]:.1f}")
    print(HEADER)
    outcomes = []
    for node in args.nodes.split(","):
        for action in args.faults.split(","):
            fault = Fault(node, action, args.at, args.stop_s)
            audio = scene if node in SCENE_NODES else wav
            outcome = await run_fault(fault, audio, reference, folder / f"{node}-{action}", args.hang_s)
            outcomes.append(outcome)
            print(row(outcome), flush=True)
    survived = sum(o.survived for o in outcomes)
    print(f"survived {survived} of {len(outcomes)}; relabellings {sum(o.relabelled for o in outcomes)}; turns lost "
          f"{sum(o.lost for o in outcomes)}; duplicated {sum(o.duplicated for o in outcomes)}")
    if args.json:
        args.json.write_text(json.dumps([{**asdict(o), "survived": o.survived} for o in outcomes], indent=1))


if __name__ == "__main__":
    asyncio.run(main())
