"""Scoring sound-event alerts against references: F1 per rule (sed_eval's definitions), false alarms per hour,
latency, plots.

Event lists are (onset, offset, label) in seconds, sed_eval's format (tab-separated files: `stream detect`'s
`<stem>.events.tsv`, and references such as `bench/simulate_sed.py` writes). A file whose reference is empty is a
negative: every alert in it is a false alarm.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stream.errors import StreamError

Event = tuple[float, float, str]


class FormatError(StreamError):
    """An event list file that is not `onset<TAB>offset<TAB>label` lines."""


def read_events(path: Path) -> list[Event]:
    out = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        try:
            onset, offset, label = float(parts[0]), float(parts[1]), parts[2].strip()
        except (IndexError, ValueError):
            raise FormatError(f"{path}:{n}: expected onset<TAB>offset<TAB>label, got {line!r}") from None
        if not 0 <= onset <= offset or not label:
            raise FormatError(f"{path}:{n}: need 0 <= onset <= offset and a label, got {line!r}")
        out.append((onset, offset, label))
    return out


@dataclass(frozen=True)
class RuleScore:
    rule: str
    references: int
    event_f1: float  # onset only, +-0.5 s
    segment_f1: float  # 1 s segments


@dataclass(frozen=True)
class Report:
    rules: list[RuleScore]
    event_f1: float  # overall (micro) over the rules
    segment_f1: float
    false_alarms: int  # alerts in negative files
    negative_s: float  # s of negative audio
    latency_s: float | None  # median onset -> sound.start publication, matched events only

    @property
    def false_alarms_per_hour(self) -> float | None:
        return 3600 * self.false_alarms / self.negative_s if self.negative_s > 0 else None


def _matches(refs: list[float], ests: list[float], collar: float) -> int:
    """Largest one-to-one matching of onsets within +-collar (sed_eval's "optimal" bipartite matching)."""
    partner: dict[int, int] = {}  # est -> ref

    def augment(r: int, seen: set[int]) -> bool:
        for e, onset in enumerate(ests):
            if e not in seen and abs(onset - refs[r]) <= collar:
                seen.add(e)
                if e not in partner or augment(partner[e], seen):
                    partner[e] = r
                    return True
        return False

    return sum(augment(r, set()) for r in range(len(refs)))


def _roll(events: list[Event], label: str, segments: int, resolution: float) -> np.ndarray:
    """Segments where `label` is active (sed_eval's event roll: floor(onset), ceil(offset))."""
    roll = np.zeros(segments, bool)
    for onset, offset, name in events:
        if name == label:
            roll[math.floor(onset / resolution):math.ceil(offset / resolution)] = True
    return roll


def _counts(references: dict[str, list[Event]], hypotheses: dict[str, list[Event]], files: list[str], label: str,
            collar: float, resolution: float) -> tuple[int, int, int, int, int, int]:
    """(event hits, references, estimates, segment hits, reference segments, estimated segments) of one label."""
    out = np.zeros(6, int)
    for f in files:
        ref = [e for e in references[f] if e[2] == label]
        hyp = [e for e in hypotheses.get(f, []) if e[2] == label]
        out[:3] += (_matches([e[0] for e in ref], [e[0] for e in hyp], collar), len(ref), len(hyp))
        end = max([e[1] for e in references[f]] + [e[1] for e in hypotheses.get(f, [])] + [0.0])
        segments = math.ceil(end / resolution)
        r, h = _roll(ref, label, segments, resolution), _roll(hyp, label, segments, resolution)
        out[3:] += (int((r & h).sum()), int(r.sum()), int(h.sum()))
    return tuple(int(x) for x in out)


def _f1(hits: int, refs: int, ests: int) -> float:
    return 2 * hits / (refs + ests) if refs + ests else 0.0


def score(references: dict[str, list[Event]], hypotheses: dict[str, list[Event]], labels: Sequence[str],
          durations: dict[str, float], starts: dict[str, list[tuple[float, float, str]]] | None = None,
          collar: float = 0.5, resolution: float = 1.0) -> Report:
    """Event-based (onsets within +-`collar` s) and segment-based (`resolution` s) F1 per label over the positive
    files, as sed_eval 0.2.1 defines them (optimal matching; micro-averaged overall; checked equal to it on the
    report-half outputs); false alarms per hour over the negative files (empty reference; `durations` in s);
    median latency from `starts` (file -> [(onset, publication time, rule)] of sound.start events) to the
    reference onsets they match.
    """
    labels = list(labels)
    positive = [f for f in references if references[f]]
    counts = {label: _counts(references, hypotheses, positive, label, collar, resolution) for label in labels}
    rules = [RuleScore(label, c[1], _f1(*c[:3]), _f1(*c[3:])) for label, c in counts.items() if c[1]]
    total = np.sum([c for c in counts.values()], axis=0) if counts else np.zeros(6, int)
    negatives = [f for f in references if not references[f]]
    false = sum(e[2] in labels for f in negatives for e in hypotheses.get(f, []))
    delays = []
    for f in positive:
        for onset, _, label in references[f]:
            near = [t - onset for a, t, r in (starts or {}).get(f, []) if r == label and abs(a - onset) <= collar]
            if near:
                delays.append(min(near))
    return Report(rules, _f1(*total[:3]), _f1(*total[3:]), false, sum(durations.get(f, 0.0) for f in negatives),
                  statistics.median(delays) if delays else None)


def format_report(report: Report) -> str:
    lines = ["rule           refs  event F1  segment F1"]
    lines += [f"{r.rule:14s} {r.references:4d}  {r.event_f1:8.3f}  {r.segment_f1:10.3f}" for r in report.rules]
    lines.append(f"{'overall':14s} {sum(r.references for r in report.rules):4d}  {report.event_f1:8.3f}  "
                 f"{report.segment_f1:10.3f}")
    fa = report.false_alarms_per_hour
    lines.append(f"false alarms on negatives: {report.false_alarms} in {report.negative_s / 60:.1f} min"
                 + (f" = {fa:.1f} per hour" if fa is not None else " (no negative files)"))
    lines.append("median onset -> sound.start latency: "
                 + (f"{report.latency_s:.2f} s" if report.latency_s is not None else "no matched onset"))
    return "\n".join(lines)


def plot_scores(path: Path, name: str, times: np.ndarray, scores: np.ndarray, rules: Sequence[str],
                reference: list[Event], hypothesis: list[Event], thresholds: dict[str, float]) -> None:
    """Score vs time of the rules that occur in the reference or the hypothesis, reference spans shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rules if any(e[2] == r for e in reference + hypothesis)] or list(rules[:1])
    fig, axes = plt.subplots(len(shown), 1, figsize=(10, 1.6 * len(shown) + 0.6), sharex=True, squeeze=False)
    for ax, rule in zip(axes[:, 0], shown):
        j = list(rules).index(rule)
        ax.plot(times + 0.48, scores[:, j], lw=1, color="C0", label="rule score (patch centre)")
        for a, b, label in reference:
            if label == rule:
                ax.axvspan(a, b, color="C2", alpha=0.25, label="reference")
        for a, b, label in hypothesis:
            if label == rule:
                ax.axvspan(a, b, ymin=0.9, ymax=1.0, color="C3", label="alert")
        if rule in thresholds:
            ax.axhline(thresholds[rule], color="C3", lw=0.8, ls="--")
        ax.set_ylim(0, 1.05)
        ax.set_ylabel(rule, rotation=0, ha="right")
    axes[-1, 0].set_xlabel("s")
    axes[0, 0].set_title(name)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    axes[0, 0].legend(dict(zip(labels, handles)).values(), dict(zip(labels, handles)).keys(), loc="upper right",
                      fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
