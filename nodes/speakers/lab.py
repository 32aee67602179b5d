"""The speaker lab: every speaker model scored on the same trials, cosine or PLDA (`stream eval eer --all`).

A `System` turns 16 kHz waveforms into embeddings. The protocol (`split`) keeps speakers disjoint: PLDA (and any
model trained here: i-vector, x-vector, d-vector) sees only the train split's speakers, cut into `SEGMENT_S`
pieces so each speaker has several embeddings even with one utterance; trials are all pairs of the test split's
utterances. CPU time is `time.process_time` (all threads) of embedding the test utterances, per audio second.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nodes.speakers.metrics import VerificationScores, det_curve, verification_scores
from nodes.speakers.plda import fit_plda
from nodes.speakers.scoring import cosine
from stream.errors import ConfigError

SAMPLE_RATE = 16000
SEGMENT_S = 4.0  # PLDA training pieces of the train split's utterances (a remainder under 2 s joins the last)
BACKENDS = ("cosine", "plda")


@dataclass(frozen=True)
class System:
    """A speaker model: `embed(waves)` maps 16 kHz waveforms in [-1, 1] to embeddings [N, D]."""

    name: str
    embed: Callable[[list[np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class Split:
    """Disjoint train and test utterances of a `path,speaker_id,...,subset` index."""

    train: list[Path]
    train_speakers: list[str]
    test: list[Path]
    test_speakers: list[str]


def split(index: Path) -> Split:
    """Rows whose `subset` contains 'train' are the train split, the others the test split; no shared speaker."""
    if not index.is_file():
        raise ConfigError(f"speaker index {index} not found; set STREAM_DATA_DIR")
    with open(index, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"path", "speaker_id", "subset"} <= set(rows[0]):
        raise ConfigError(f"{index} needs 'path', 'speaker_id' and 'subset' columns for a train/test split")
    train = [r for r in rows if "train" in r["subset"]]
    test = [r for r in rows if "train" not in r["subset"]]
    shared = {r["speaker_id"] for r in train} & {r["speaker_id"] for r in test}
    if not train or not test or shared:
        raise ConfigError(f"{index}: need train and test subsets with disjoint speakers ({len(shared)} shared)")
    return Split([index.parent / r["path"] for r in train], [r["speaker_id"] for r in train],
                 [index.parent / r["path"] for r in test], [r["speaker_id"] for r in test])


def pieces(waves: list[np.ndarray], labels: list[str], seconds: float = SEGMENT_S
           ) -> tuple[list[np.ndarray], list[str]]:
    """Waveforms cut into `seconds` pieces, each labelled with its utterance's speaker."""
    size = round(seconds * SAMPLE_RATE)
    out, owners = [], []
    for wave, label in zip(waves, labels):
        cut = [wave[s:s + size] for s in range(0, len(wave), size)]
        if len(cut) > 1 and len(cut[-1]) < size // 2:
            cut[-2:] = [np.concatenate(cut[-2:])]
        out += cut
        owners += [label] * len(cut)
    return out, owners


@dataclass(frozen=True)
class Result:
    system: str
    backend: str
    scores: VerificationScores
    frr: np.ndarray
    far: np.ndarray
    cpu_per_audio_s: float  # CPU seconds per second of test audio (embedding only)


def evaluate(system: System, train: tuple[list[np.ndarray], list[str]], test: tuple[list[np.ndarray], list[str]],
             backends: tuple[str, ...] = BACKENDS, p_target: float = 0.01) -> list[Result]:
    """Score `system` on all pairs of the test utterances, once per backend (PLDA fitted on the train pieces)."""
    waves, speakers = test
    start = time.process_time()
    emb = system.embed(waves)
    cpu = (time.process_time() - start) / (sum(len(w) for w in waves) / SAMPLE_RATE)
    i, j = np.triu_indices(len(waves), k=1)
    same = np.array(speakers)[i] == np.array(speakers)[j]
    results = []
    for backend in backends:
        if backend == "cosine":
            scores = cosine(emb, emb)[i, j]
        elif backend == "plda":
            plda = fit_plda(system.embed(train[0]), np.array(train[1]))
            scores = plda.score(emb, emb)[i, j]
        else:
            raise ConfigError(f"unknown scoring backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
        _, frr, far = det_curve(scores[same], scores[~same])
        results.append(Result(system.name, backend, verification_scores(scores[same], scores[~same], p_target),
                              frr, far, cpu))
    return results
