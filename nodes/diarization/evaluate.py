"""Diarisation scores with pyannote.metrics: DER (no collar and +-0.25 s collar) and JER, overlap scored.

Scored regions come from the UEM; a recording without a UEM entry is scored on the union of reference and
hypothesis extents. Pooled rows sum error and reference durations over recordings (the NIST convention), they do
not average per-file rates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pyannote.core import Annotation, Segment, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate

from stream.rttm import Turn

COLLAR = 0.5  # pyannote's collar is the total width removed around each reference boundary: +-0.25 s


def annotation(uri: str, turns: list[Turn]) -> Annotation:
    ann = Annotation(uri=uri)
    for i, t in enumerate(turns):
        if t.end > t.start:
            ann[Segment(t.start, t.end), i] = t.label
    return ann


def timeline(uri: str, spans: list[tuple[float, float]]) -> Timeline:
    return Timeline([Segment(s, e) for s, e in spans], uri=uri)


@dataclass(frozen=True)
class Score:
    """One row of the table: rates in %, durations in seconds of scored reference speech."""

    uri: str
    der: float
    missed: float
    false_alarm: float
    confusion: float
    der_collar: float
    jer: float
    speech: float


def score(references: dict[str, list[Turn]], hypotheses: dict[str, list[Turn]],
          uems: dict[str, list[tuple[float, float]]]) -> list[Score]:
    """Per-recording rows (every uri of ``references``, missing hypotheses count as silence) + a pooled row."""
    der, der_c, jer = DiarizationErrorRate(skip_overlap=False), DiarizationErrorRate(COLLAR), JaccardErrorRate()
    rows: list[Score] = []
    for uri in sorted(references):
        ref, hyp = annotation(uri, references[uri]), annotation(uri, hypotheses.get(uri, []))
        uem = timeline(uri, uems[uri]) if uri in uems else None
        c = der(ref, hyp, uem=uem, detailed=True)
        rows.append(Score(uri, 100 * c["diarization error rate"], *_parts(c),
                          100 * der_c(ref, hyp, uem=uem), 100 * jer(ref, hyp, uem=uem), c["total"]))
    total = der[:]
    rows.append(Score("TOTAL", 100 * abs(der), *_parts(total), 100 * abs(der_c), 100 * abs(jer), total["total"]))
    return rows


def _parts(c: dict[str, float]) -> tuple[float, float, float]:
    ref = max(c["total"], 1e-9)
    return 100 * c["missed detection"] / ref, 100 * c["false alarm"] / ref, 100 * c["confusion"] / ref


def format_table(rows: list[Score]) -> str:
    head = f"{'uri':<12} {'DER%':>6} {'miss':>6} {'FA':>6} {'conf':>6} {'DER±.25':>8} {'JER%':>6} {'speech s':>9}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.uri:<12} {r.der:6.1f} {r.missed:6.1f} {r.false_alarm:6.1f} {r.confusion:6.1f} "
                     f"{r.der_collar:8.1f} {r.jer:6.1f} {r.speech:9.2f}")
    return "\n".join(lines)


def plot_timelines(path: Path, uri: str, reference: list[Turn], hypothesis: list[Turn],
                   uem: list[tuple[float, float]] | None = None, title: str = "") -> None:
    """PNG with one lane per speaker: reference speakers on top, hypothesis speakers below, UEM shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lanes = [("ref", lab) for lab in sorted({t.label for t in reference})]
    lanes += [("hyp", lab) for lab in sorted({t.label for t in hypothesis})]
    fig, ax = plt.subplots(figsize=(12, 0.4 * len(lanes) + 1.2))
    colors = {"ref": "tab:blue", "hyp": "tab:orange"}
    for y, (side, label) in enumerate(lanes):
        turns = reference if side == "ref" else hypothesis
        spans = [(t.start, t.end - t.start) for t in turns if t.label == label]
        ax.broken_barh(spans, (y - 0.4, 0.8), color=colors[side])
    for s, e in uem or []:
        ax.axvspan(s, e, color="0.92", zorder=0)
    ax.set_yticks(range(len(lanes)), [f"{side}: {label}" for side, label in lanes])
    ax.invert_yaxis()
    ax.set_xlabel("time (s)")
    ax.set_title(title or uri)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


GRID = 0.01  # s, resolution of `overlap_miss`


def _count(turns: list[Turn], frames: int) -> "np.ndarray":
    """Speakers active in each GRID frame (a speaker's own overlapping turns count once)."""
    import numpy as np

    per_label: dict[str, np.ndarray] = {}
    for t in turns:
        row = per_label.setdefault(t.label, np.zeros(frames, bool))
        row[int(round(t.start / GRID)):int(round(t.end / GRID))] = True
    return sum((row.astype(np.int32) for row in per_label.values()), np.zeros(frames, np.int32))


def overlap_miss(references: dict[str, list[Turn]], hypotheses: dict[str, list[Turn]],
                 uems: dict[str, list[tuple[float, float]]]) -> tuple[float, float]:
    """(missed, total) speaker-seconds of reference speech in overlap (>= 2 reference speakers), pooled.

    Why: missed speech in overlap is most of what the segmentation model leaves on meetings; this isolates it.
    In each 10 ms frame of the UEM with r >= 2 reference speakers and h hypothesis speakers, max(0, r - h) of
    the r speaker-frames are missed (the missed-detection part of DER, counted in overlap only).
    """
    import numpy as np

    missed = total = 0.0
    for uri, ref in references.items():
        end = max([t.end for t in ref] + [e for _, e in uems.get(uri, [])] + [0.0])
        frames = int(round(end / GRID)) + 1
        scored = np.zeros(frames, bool)
        for s, e in uems.get(uri, [(0.0, end)]):
            scored[int(round(s / GRID)):int(round(e / GRID))] = True
        r, h = _count(ref, frames), _count(hypotheses.get(uri, []), frames)
        over = scored & (r >= 2)
        missed += float(np.maximum(0, r - h)[over].sum()) * GRID
        total += float(r[over].sum()) * GRID
    return missed, total
