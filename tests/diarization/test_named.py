"""Named speakers: enrol 3 LibriSpeech speakers, diarise a conversation of other utterances of theirs plus 2
unknown speakers with overlaps (tests/diarization/conversation.py); names must be right and never go to strangers.

Run at latency 5 s and 0.5 s. At 0.5 s the newest half second of a window often still carries the previous voice's
local speaker at turn changes; the tail embeddings hand it back (69.7 -> 87.5 % named, bench/RESULTS.md).
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from stream.cli import main
from stream.rttm import read_rttm
from conversation import ENROLLED, RATE, UNKNOWN, build

STEP = 0.01  # s, scoring grid
MIN_NAMED = {5.0: 0.95, 0.5: 0.85}  # latency -> least share of the enrolled speech the system detects that is
#   labelled with the right name (measured 0.956 / 0.875)
MAX_STRANGER_NAMED_S = {5.0: 0.5, 0.5: 1.8}  # s of unknown-only speech that may carry an enrolled name: the
#   turn-boundary smear, an enrolled label running on into a stranger's first half second (0.5 s latency: 1.43 s
#   measured, 2.18 s without the tail embeddings)


def grid(turns, labels, frames):
    out = np.zeros((frames, len(labels)), bool)
    for t in turns:
        if t.label in labels:
            out[int(t.start / STEP): int(t.end / STEP), labels.index(t.label)] = True
    return out


@pytest.fixture(scope="module", params=sorted(MIN_NAMED), ids=lambda lat: f"latency-{lat:g}")
def conversation(request, tmp_path_factory, data):
    latency = request.param
    tmp = tmp_path_factory.mktemp("named")
    conv = build(data)
    sf.write(tmp / "conversation.wav", conv.audio, RATE)
    for name, files in conv.enrolment.items():
        assert main(["enroll", name, *map(str, files), "--db", str(tmp / "db")]) == 0
    assert main(["diarize", str(tmp / "conversation.wav"), "--out", str(tmp / "out"), "--latency", str(latency),
                 "--enrolled", str(tmp / "db")]) == 0
    return conv, read_rttm(tmp / "out" / "conversation.rttm")["conversation"], latency


def test_enrolled_speakers_are_named(conversation):
    conv, hyp, latency = conversation
    frames = int(len(conv.audio) / RATE / STEP) + 1
    labels = list(ENROLLED)
    ref, got = grid(conv.turns, labels, frames), grid(hyp, labels, frames)
    anything = grid(hyp, sorted({t.label for t in hyp}), frames).any(axis=1)
    detected = ref & anything[:, None]
    named = (got & detected).sum() / detected.sum()
    print(f"latency {latency:g} s: {named:.3f} of detected enrolled speech named right")
    assert named >= MIN_NAMED[latency]


def test_unknown_speakers_are_never_named(conversation):
    conv, hyp, latency = conversation
    frames = int(len(conv.audio) / RATE / STEP) + 1
    stranger_only = grid(conv.turns, list(UNKNOWN), frames).any(axis=1) & ~grid(conv.turns, list(ENROLLED),
                                                                                   frames).any(axis=1)
    named = grid(hyp, list(ENROLLED), frames).any(axis=1)
    assert (stranger_only & named).sum() * STEP <= MAX_STRANGER_NAMED_S[latency]
    assert {t.label for t in hyp} - set(ENROLLED), "the unknown speakers got anonymous labels"
