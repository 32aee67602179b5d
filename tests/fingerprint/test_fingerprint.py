"""Fingerprints: an index of 12 synthetic tracks, queries under noise, gain and +-5 % speed, unindexed audio, the
node's events in a real graph, and bad input.

Guards: every 6 s query at 10 dB SNR (white noise), gain 0.1 and speed 0.95 / 1.0 / 1.05 is identified within 4 s
at the right offset (+-0.5 s) and speed (+-1 %); 30 s of real speech (AMI) and an unindexed synthetic track give no
match; `stream fingerprint add|match` and `stream eval fingerprint` agree with the node.
"""

from __future__ import annotations

import asyncio
import csv
import json
from functools import cache

import jsonschema
import numpy as np
import pytest
import soundfile as sf
import soxr

from nodes.fingerprint.files import file_hashes, match_file
from nodes.fingerprint.index import FingerprintIndex
from nodes.fingerprint.node import FingerprintNode
from stream.errors import AudioError, ConfigError, MessageError
from stream.graph import Supervisor, load_graph
from stream.message import Message
from stream.node import parse_config
from stream.schemas import schema
from tests.chords.synth import note

RATE = 16000
TRACKS = 12
TRACK_S = 24.0


@cache
def tone(midi: int) -> np.ndarray:
    return note(midi, 0.5, RATE)


@cache
def synth_track(seed: int, seconds: float = TRACK_S) -> np.ndarray:
    """Three voices of random harmonic notes (0.1-0.5 s, MIDI 45-88) with random rests: distinct per seed."""
    rng = np.random.default_rng(seed)
    out = np.zeros(round(seconds * RATE), np.float32)
    for _ in range(3):
        t = 0.0
        while t < seconds:
            length = rng.uniform(0.1, 0.5)
            if rng.random() > 0.2:
                sound = tone(int(rng.integers(45, 89)))[:round(length * RATE)] * rng.uniform(0.05, 0.15)
                start = round(t * RATE)
                out[start:start + len(sound)] += sound[:len(out) - start]
            t += length
    return out


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """12 indexed tracks as FLACs, the index folder, and one unindexed track."""
    root = tmp_path_factory.mktemp("fp")
    (root / "tracks").mkdir()
    for k in range(TRACKS):
        sf.write(root / "tracks" / f"track{k:02d}.flac", synth_track(k), RATE)
    sf.write(root / "unindexed.flac", synth_track(1000), RATE)
    from stream.cli import main

    assert main(["fingerprint", "add", str(root / "tracks"), "--index", str(root / "index")]) == 0
    return root


def query(track: int, start: float, speed: float, snr_db: float, gain: float, seconds: float = 6.0) -> np.ndarray:
    x = synth_track(track).copy()[round(start * RATE):round((start + seconds / speed + 0.5) * RATE)]
    if speed != 1.0:
        x = soxr.resample(x, RATE * speed, RATE)  # played `speed` times faster: pitch up, time shorter
    x = x[:round(seconds * RATE)]
    noise = np.random.default_rng(track).normal(size=x.size).astype(np.float32)
    return ((x + noise * np.sqrt(np.mean(x ** 2) / 10 ** (snr_db / 10))) * gain).astype(np.float32)


@pytest.mark.parametrize("speed", [0.95, 1.0, 1.05])
def test_noisy_fast_slow_queries_are_identified(library, tmp_path, speed):
    index = FingerprintIndex.load(library / "index")
    for k, start in ((1, 3.0), (6, 11.5), (11, 15.0)):
        sf.write(tmp_path / "q.wav", query(k, start, speed, snr_db=10.0, gain=0.1), RATE)
        events = match_file(tmp_path / "q.wav", index).events
        assert events, f"track{k:02d} at speed {speed} not identified"
        first = events[0]
        assert first["track"] == f"track{k:02d}" and first["t_audio"] <= 4.0
        assert abs(first["offset"] - (start + speed * first["t_audio"])) <= 0.5
        assert abs(first["speed"] - speed) <= 0.01
        assert all(e["track"] == f"track{k:02d}" for e in events)
        for e in events:
            jsonschema.validate(e, schema("fingerprint.match"))


def test_unindexed_audio_gives_no_match(library, data):
    index = FingerprintIndex.load(library / "index")
    assert match_file(library / "unindexed.flac", index).events == []
    assert match_file(data / "diarization" / "ami" / "trn03.flac", index).events == []


def test_cli_match_and_eval(library, tmp_path, capsys):
    from stream.cli import main

    sf.write(tmp_path / "q1.wav", query(4, 2.0, 1.03, 10.0, 0.5), RATE)
    sf.write(tmp_path / "q2.wav", synth_track(2000)[:8 * RATE], RATE)
    (tmp_path / "bad.flac").write_bytes(b"nope")
    assert main(["fingerprint", "match", str(tmp_path / "q1.wav"), str(tmp_path / "bad.flac"),
                 "--index", str(library / "index")]) == 1
    out, err = capsys.readouterr()
    assert "track04 offset" in out and err.count("error") == 1
    with open(tmp_path / "queries.csv", "w", newline="") as f:
        csv.writer(f).writerows([["audio", "track", "offset"], ["q1.wav", "track04", "2.0"], ["q2.wav", "", ""]])
    assert main(["eval", "fingerprint", "--index", str(library / "index"), "--queries",
                 str(tmp_path / "queries.csv")]) == 0
    out = capsys.readouterr().out
    assert "1 of 1 correct" in out and "false matches 0" in out.splitlines()[1]


def test_bad_input_and_config(library, tmp_path):
    with pytest.raises(ConfigError, match="no fingerprint index"):
        asyncio.run(FingerprintNode(parse_config(FingerprintNode.Config, {"index": str(tmp_path)}, "fp")).setup())
    with pytest.raises(ConfigError, match="min_hits"):
        parse_config(FingerprintNode.Config, {"min_hits": 1}, "fp")
    node = FingerprintNode(index=FingerprintIndex.load(library / "index"))
    bad = np.zeros(1600, np.float32)
    bad[3] = np.inf
    with pytest.raises(MessageError, match="NaN or infinite"):
        asyncio.run(node.process(Message.new("s", "pcm", bad, sr=RATE, t_capture_ns=0, t_wall=0.0)))
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError):
        file_hashes(tmp_path / "empty.wav")


GRAPH = """
[graph]
name = "fp"
[metrics]
port = 0
[[nodes]]
name = "capture"
kind = "capture"
config = {{ source = "file", path = "{audio}", rate = 16000, block_ms = 20.0, realtime = false, stream = "radio" }}
[[nodes]]
name = "fingerprint"
kind = "fingerprint"
inputs = ["capture"]
config = {{ index = "{index}" }}
[[sinks]]
kind = "jsonl"
path = "{out}"
"""


async def test_node_in_a_graph(library, tmp_path):
    """Capture -> fingerprint -> jsonl over ZeroMQ: a noisy, 4 % fast excerpt of track07 is announced once."""
    sf.write(tmp_path / "q.wav", query(7, 5.0, 1.04, 10.0, 0.3, seconds=10.0), RATE)
    (tmp_path / "g.toml").write_text(GRAPH.format(audio=tmp_path / "q.wav", index=library / "index",
                                                  out=tmp_path / "events.jsonl"))
    supervisor = Supervisor(load_graph(tmp_path / "g.toml"), tmp_path / "run")
    assert await asyncio.wait_for(supervisor.run(duration_s=60), 90) == 0
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [e["track"] for e in events] == ["track07"]
    jsonschema.validate(events[0], schema("fingerprint.match"))
    assert events[0]["t_audio"] <= 4.0 and abs(events[0]["speed"] - 1.04) <= 0.01
