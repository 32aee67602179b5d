"""File mode: run one recording through the same `Detector` as the live node, on a simulated clock.

The clock starts at 0 with the file: an event's `t_capture` is its audio time and `t_publish` the audio time at
which the node decided it (the end of the deciding patch), so `t_publish - t_capture` is the onset -> alert
latency the live node would have, without its compute time. Memory stays flat: the file is read in blocks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nodes.capture.files import read_blocks
from nodes.sed.detector import DEFAULT_HOP, Detector, Tags
from nodes.sed.frontend import SAMPLE_RATE
from nodes.sed.node import edge_event, tags_event
from nodes.sed.rules import Rule
from nodes.sed.yamnet import Yamnet
from stream.errors import AudioError


@dataclass(frozen=True)
class FileResult:
    duration: float  # s of audio
    events: list[dict[str, Any]]  # sound.start / sound.stop / sound.tags, in decision order
    gated: dict[str, int]  # patches gated per reason
    elapsed: float  # s of wall time
    times: np.ndarray  # [patches] s, start of each patch
    rule_scores: np.ndarray  # [patches, rules] pooled rule scores (what the decoder smooths and thresholds)
    rules: list[str]

    def alerts(self) -> list[tuple[float, float, str]]:
        """(onset, offset, rule) per finished event: the .events.tsv rows."""
        return sorted((e["start"], e["t_audio"], e["rule"]) for e in self.events if e["type"] == "sound.stop")


def detect_file(path: Path, model: Yamnet, rules: Sequence[Rule], hop: float = DEFAULT_HOP, tags_every: float = 1.0,
                progress: Callable[[float], None] | None = None) -> FileResult:
    start = time.perf_counter()
    detector = Detector(model, rules, hop, tags_every)
    stream = path.stem
    events: list[dict[str, Any]] = []
    gated: dict[str, int] = {}
    times: list[float] = []
    rule_scores: list[np.ndarray] = []

    def publish(edges: list, tags: list[Tags]) -> None:
        batch = [edge_event(e, stream, 0.0, "sed") | {"t_publish": e.decided} for e in edges]
        batch += [tags_event(t, stream, 0.0, "sed") | {"t_publish": t.t + t.duration} for t in tags]
        events.extend(sorted(batch, key=lambda e: e["t_publish"]))

    for block in read_blocks(path, SAMPLE_RATE):
        out = detector.push(block)
        for reason, n in out.gated.items():
            gated[reason] = gated.get(reason, 0) + n
        publish(out.edges, out.tags)
        times += out.times
        rule_scores += out.rule_scores
        if progress:
            progress(detector.seconds)
    if detector.samples == 0:
        raise AudioError("the file has no samples")
    publish(detector.finish(), [])
    return FileResult(detector.seconds, events, gated, time.perf_counter() - start, np.asarray(times, np.float32),
                      np.asarray(rule_scores, np.float32).reshape(len(times), len(rules)), [r.name for r in rules])
