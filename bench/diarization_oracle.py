"""Upper bound of the diarisation chain on the AMI clips: the shipped segmentation and reconstruction, with every
window's local speakers labelled from the reference (oracle clustering).

Whatever clustering does, the refined output cannot beat this number, since only the speaker labels of each
window's local speakers are left to decide: it is what the segmentation model (missed speech, voices sharing a
local slot) allows.

    .venv/bin/python bench/diarization_oracle.py
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from nodes.capture.files import read_blocks
from nodes.diarization.evaluate import format_table, score
from nodes.diarization.pipeline import SAMPLE_RATE, DiarizationConfig, WindowBuffer
from nodes.diarization.refine import WindowRecord, aggregate_offline, speaker_count, top_speakers
from nodes.diarization.windows import WindowAnalyzer
from stream.models import load_params
from stream.paths import data_dir
from stream.rttm import Turn, read_rttm, read_uem


def reference_activity(turns: list[Turn], frames: int, resolution: float) -> np.ndarray:
    """[frames, reference speakers] 0/1 on the output grid."""
    labels = sorted({t.label for t in turns})
    out = np.zeros((frames, max(len(labels), 1)))
    for t in turns:
        out[round(t.start / resolution):round(t.end / resolution), labels.index(t.label)] = 1
    return out


def oracle_turns(records: list[WindowRecord], reference: np.ndarray, tau_active: float,
                 resolution: float) -> list[Turn]:
    """Refined turns when each window's active local speakers get the reference speaker they overlap most."""
    frames = len(reference)
    mappings = []
    for r in records:
        lo, hi = max(r.first_frame, 0), min(r.first_frame + len(r.activity), frames)
        act = r.activity[lo - r.first_frame:hi - r.first_frame]
        local = [s for s in range(act.shape[1]) if act[:, s].max() >= tau_active]
        if hi <= lo or not local:
            mappings.append({})
            continue
        rows, cols = linear_sum_assignment(-(act[:, local].T @ reference[lo:hi]))
        mappings.append({local[i]: int(c) for i, c in zip(rows, cols)})
    active = top_speakers(aggregate_offline(records, mappings, frames), speaker_count(records, frames))
    turns = []
    for k in range(active.shape[1]):
        edges = np.flatnonzero(np.diff(np.r_[0, active[:, k].astype(int), 0]))
        turns += [Turn(s * resolution, e * resolution, f"S{k}") for s, e in zip(edges[::2], edges[1::2])]
    return turns


def run() -> None:
    ami = data_dir() / "diarization" / "ami"
    references, uems = read_rttm(ami / "reference.rttm"), read_uem(ami / "reference.uem")
    config = DiarizationConfig()
    g = config.geometry
    analyzer = WindowAnalyzer(load_params("segmentation-3.0"), load_params("campplus"), g, config.overlap_weight)
    hypotheses = {}
    for path in sorted(ami.glob("*.flac")):
        buffer, windows = WindowBuffer(g), []
        for block in read_blocks(path, SAMPLE_RATE):
            windows += buffer.push(block)
        windows += buffer.flush()
        records = []
        for k in range(0, len(windows), 8):
            batch = np.zeros((8, analyzer.samples), np.float32)
            batch[: len(windows[k:k + 8])] = windows[k:k + 8]
            for i, act in enumerate(analyzer.segment(batch)[: len(windows[k:k + 8])]):
                records.append(WindowRecord((k + i + 1) * g.frames_per_step - g.frames_per_window, act, None, {}, {}))
        frames = round(buffer.duration / g.resolution)
        reference = reference_activity(references[path.stem], frames, g.resolution)
        hypotheses[path.stem] = oracle_turns(records, reference, config.clustering.tau_active, g.resolution)
    print(f"oracle clustering, {g.duration:g} s windows, refined reconstruction: DER/JER in %")
    print(format_table(score({u: references[u] for u in hypotheses}, hypotheses, uems)))


if __name__ == "__main__":
    run()
