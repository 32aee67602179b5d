"""Build a synthetic conversation from LibriSpeech utterances (../shared/data/speakers) for named-speaker tests.

Three "enrolled" speakers give enrolment utterances (not used in the conversation) and conversation utterances;
two "unknown" speakers only talk. Turns of at most ``TURN_S`` seconds follow each other with gaps drawn from
``GAP_S`` (negative gaps overlap the previous turn). Deterministic for a seed.
Run as a script to write the WAV and its RTTM: ``python tests/diarization/conversation.py OUT_DIR``.
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from stream.rttm import Turn, write_rttm

ENROLLED = ("1688", "1998", "2033")  # LibriSpeech test-other speaker ids
UNKNOWN = ("2414", "2609")
ENROL_UTTERANCES = 3  # the first three utterances of each enrolled speaker are for enrolment only
TURN_S = 6.0  # longest turn, s
GAP_S = (-1.0, 0.8)  # range of the pause between turns, s (negative = overlap)
TURNS = 16
RATE = 16000


@dataclass(frozen=True)
class Conversation:
    audio: np.ndarray  # 16 kHz mono float32
    turns: list[Turn]  # reference, labels = speaker ids
    enrolment: dict[str, list[Path]]  # speaker id -> enrolment utterances


def utterances(data: Path) -> dict[str, list[Path]]:
    by_speaker: dict[str, list[Path]] = {}
    with open(data / "speakers" / "index.csv", newline="") as f:
        for row in csv.DictReader(f):
            by_speaker.setdefault(row["speaker_id"], []).append(data / "speakers" / row["path"])
    return {k: sorted(v) for k, v in by_speaker.items()}


def build(data: Path, seed: int = 0) -> Conversation:
    rng = np.random.default_rng(seed)
    utts = utterances(data)
    pool = {s: list(utts[s][ENROL_UTTERANCES:]) for s in ENROLLED} | {s: list(utts[s]) for s in UNKNOWN}
    speakers = list(ENROLLED + UNKNOWN)
    order = [speakers[i % len(speakers)] for i in rng.permutation(TURNS)]
    for i in range(1, len(order)):  # no speaker follows themself
        if order[i] == order[i - 1]:
            order[i] = speakers[(speakers.index(order[i]) + 1) % len(speakers)]
    pieces, turns, t = [], [], 0.0
    for speaker in order:
        wave, _ = sf.read(pool[speaker].pop(0), dtype="float32")  # LibriSpeech: 16 kHz mono
        wave = wave[: int(TURN_S * RATE)]
        wave = wave / (np.abs(wave).max() + 1e-9) * 0.5
        start = max(0.0, t + rng.uniform(*GAP_S)) if turns else 0.5
        pieces.append((int(start * RATE), wave))
        turns.append(Turn(start, start + len(wave) / RATE, speaker))
        t = start + len(wave) / RATE
    audio = np.zeros(int((t + 0.5) * RATE), np.float32)
    for offset, wave in pieces:
        audio[offset: offset + len(wave)] += wave
    return Conversation(audio, turns, {s: utts[s][:ENROL_UTTERANCES] for s in ENROLLED})


if __name__ == "__main__":
    from stream.paths import data_dir

    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    conversation = build(data_dir())
    sf.write(out / "conversation.wav", conversation.audio, RATE)
    write_rttm(out / "conversation.rttm", "conversation", conversation.turns)
    print(f"{len(conversation.audio) / RATE:.1f} s, {len(conversation.turns)} turns -> {out}")
