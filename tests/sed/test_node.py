"""The SED node bare (pcm messages in 20 ms blocks, as the capture node sends them) and `stream detect`.

Data: ESC-50 1-100032-A-0 (../shared/data/sed/esc50), a dog barking from ~1.7 s after a silent lead-in.
Guards: the dog_bark rule starts once near the first bark and nothing else alerts; every event validates
against its schema; state survives a restart; bad audio (wrong rate, NaN) is refused with MessageError and
silent or clipped audio is gated, never alerting; `stream detect` writes the TSV/JSONL and names a bad file.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import soundfile as sf
import soxr

from nodes.sed.node import SedConfig, SedNode
from nodes.sed.rules import load_rules
from stream.errors import MessageError
from stream.message import Message
from stream.schemas import schema

BLOCK = 320  # 20 ms at 16 kHz


@pytest.fixture(scope="module")
def dog(data) -> np.ndarray:
    x, rate = sf.read(str(data / "sed" / "esc50" / "1-100032-A-0.wav"), dtype="float32")
    return soxr.resample(x, rate, 16000).astype(np.float32)


def node_with(yamnet, **config) -> SedNode:
    node = SedNode(SedConfig(**config), name="sed")
    node.model = yamnet
    node.rules = load_rules(Path(node.config.rules), yamnet.class_names)
    return node


def feed(node: SedNode, x: np.ndarray, stream: str = "kitchen", rate: int = 16000, t0: int = 0,
         close: bool = True) -> list[dict]:
    async def go() -> list[dict]:
        out = []
        for i in range(0, len(x), BLOCK):
            msg = Message.new(stream, "pcm", x[i:i + BLOCK], sr=rate, t_capture_ns=t0 + i * 62_500,
                              t_wall=1e9 + i / rate)
            out += [m.header.meta for m in await node.process(msg)]
        return out + ([m.header.meta for m in await node.close()] if close else [])

    return asyncio.run(go())


def test_dog_barks_once_and_events_match_their_schemas(yamnet, dog):
    events = feed(node_with(yamnet), dog)
    alerts = [e for e in events if e["type"] != "sound.tags"]
    assert [(e["type"], e["rule"]) for e in alerts] == [("sound.start", "dog_bark"), ("sound.stop", "dog_bark")]
    start = alerts[0]
    assert 1.4 <= start["t_audio"] <= 2.4 and start["decided"] - start["t_audio"] < 1.0
    assert start["decided"] <= 2.45  # the bark is within 20 dB of its peak from 2.27 s: hop 0.08 s 2.32, 0.16 s 2.56
    assert start["t_capture"] == pytest.approx(1e9 + start["t_audio"])
    tags = [e for e in events if e["type"] == "sound.tags"]
    assert len(tags) == 4 and any(t["label"] == "Dog" for e in tags for t in e["tags"])
    for event in events:
        jsonschema.validate(event, schema(event["type"]))


def test_restart_keeps_the_open_event(yamnet, dog):
    first = node_with(yamnet)
    half = 3 * 16000  # the bark started and was announced, not over
    events = [e for e in feed(first, dog[:half], close=False) if e["type"] == "sound.start"]
    state = first.state_dict()
    second = node_with(yamnet)
    second.load_state_dict(state)
    later = feed(second, dog[half:], t0=half * 62_500)
    assert len(events) == 1
    stops = [(e["type"], e["start"]) for e in later if e["type"] != "sound.tags"]
    assert stops == [("sound.stop", events[0]["t_audio"])]


@pytest.mark.parametrize("signal, reason", [
    (np.zeros(5 * 16000, np.float32), "silent"),
    (np.clip(np.random.default_rng(1).normal(0, 3, 5 * 16000), -1, 1).astype(np.float32), "clipped"),
])
def test_silent_and_clipped_audio_is_gated_never_alerts(yamnet, signal, reason):
    from stream.metrics import SED_GATED

    before = SED_GATED.labels(node="sed", reason=reason)._value.get()
    events = feed(node_with(yamnet), signal)
    assert [e for e in events if e["type"] != "sound.tags"] == []
    assert SED_GATED.labels(node="sed", reason=reason)._value.get() - before >= 20


def test_wrong_rate_and_nan_are_refused(yamnet, dog):
    node = node_with(yamnet)
    with pytest.raises(MessageError, match="44100 Hz"):
        feed(node, dog[:BLOCK], rate=44100)
    bad = dog[:BLOCK].copy()
    bad[3] = np.nan
    with pytest.raises(MessageError, match="NaN"):
        feed(node, bad)


@pytest.fixture(scope="module")
def detected(data, tmp_path_factory):
    """`stream detect --scores` on the dog clip, 3 s of silence (a negative) and a file that is not audio."""
    from stream.cli import main

    folder = tmp_path_factory.mktemp("detect")
    (folder / "broken.wav").write_text("not audio")
    sf.write(folder / "quiet.wav", np.zeros(48000, np.float32), 16000)
    args = [str(data / "sed" / "esc50" / "1-100032-A-0.wav"), str(folder / "quiet.wav"), str(folder / "broken.wav")]
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["detect", *args, "--out", str(folder / "out"), "--scores"])
    return code, err.getvalue(), folder


def test_stream_detect_writes_events_and_names_bad_files(detected):
    code, err, folder = detected
    assert code == 1 and err.count("error") == 1 and "broken.wav: error: cannot decode audio" in err
    out = folder / "out"
    rows = [line.split("\t") for line in (out / "1-100032-A-0.events.tsv").read_text().splitlines()]
    assert [r[2] for r in rows] == ["dog_bark"] and 1.4 <= float(rows[0][0]) <= 2.4 < float(rows[0][1])
    assert (out / "quiet.events.tsv").read_text() == ""
    events = [json.loads(line) for line in (out / "1-100032-A-0.events.jsonl").read_text().splitlines()]
    for event in events:
        jsonschema.validate(event, schema(event["type"]))
    start = next(e for e in events if e["type"] == "sound.start")
    assert 0 < start["t_publish"] - start["t_capture"] < 1.0  # onset -> alert on the simulated clock


def test_stream_eval_sed_scores_the_detect_outputs(detected, tmp_path, capsys):
    from stream.cli import main

    _, _, folder = detected
    refs = tmp_path / "refs"
    refs.mkdir()
    (refs / "1-100032-A-0.txt").write_text("1.7\t2.9\tdog_bark\n")  # loudest window from 1.70 s (models README)
    (refs / "quiet.txt").write_text("")
    code = main(["eval", "sed", str(folder / "out"), "--reference", str(refs), "--labels", "dog_bark,cough",
                 "--plots", str(tmp_path / "plots")])
    out = capsys.readouterr().out
    assert code == 0
    assert [line.split() for line in out.splitlines() if line.startswith(("dog_bark", "overall"))] == [
        ["dog_bark", "1", "1.000", "1.000"], ["overall", "1", "1.000", "1.000"]]
    assert "false alarms on negatives: 0 in 0.1 min = 0.0 per hour" in out
    assert (tmp_path / "plots" / "1-100032-A-0.png").stat().st_size > 10_000
