"""Scoring sound-event alerts against references: sed_eval F1 per rule, false alarms per hour, latency, plots.

Event lists are (onset, offset, label) in seconds, sed_eval's format (tab-separated files: `stream detect`'s
`<stem>.events.tsv`, and references such as `bench/simulate_sed.py` writes). A file whose reference is empty is a
negative: every alert in it is a false alarm.
"""

from __future__ import annotations

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


def _container(events: dict[str, list[Event]]):
    import dcase_util

    return dcase_util.containers.MetaDataContainer(
        [{"filename": f, "event_label": label, "onset": a, "offset": b} for f, evs in events.items()
         for a, b, label in evs])


def score(references: dict[str, list[Event]], hypotheses: dict[str, list[Event]], labels: Sequence[str],
          durations: dict[str, float], starts: dict[str, list[tuple[float, float, str]]] | None = None) -> Report:
    """sed_eval event-based (onset, +-0.5 s) and segment-based (1 s) F1 per label over the positive files;
    false alarms per hour over the negative files (empty reference; `durations` in s); median latency from
    `starts` (file -> [(onset, publication time, rule)] of sound.start events) to the reference onsets they match.
    """
    import sed_eval

    labels = list(labels)
    positive = [f for f in references if references[f]]
    event = sed_eval.sound_event.EventBasedMetrics(labels, t_collar=0.5, evaluate_onset=True,
                                                   evaluate_offset=False)
    segment = sed_eval.sound_event.SegmentBasedMetrics(labels, time_resolution=1.0)
    for f in positive:
        ref = _container({f: [e for e in references[f] if e[2] in labels]})
        hyp = _container({f: [e for e in hypotheses.get(f, []) if e[2] in labels]})
        event.evaluate(ref, hyp)
        segment.evaluate(ref, hyp)
    per_event, per_segment = event.results_class_wise_metrics(), segment.results_class_wise_metrics()
    counts = {label: sum(e[2] == label for f in positive for e in references[f]) for label in labels}
    rules = [RuleScore(label, counts[label], _f(per_event[label]["f_measure"]["f_measure"]),
                       _f(per_segment[label]["f_measure"]["f_measure"])) for label in labels if counts[label]]
    negatives = [f for f in references if not references[f]]
    false = sum(e[2] in labels for f in negatives for e in hypotheses.get(f, []))
    delays = []
    for f in positive:
        for onset, _, label in references[f]:
            near = [t - onset for a, t, r in (starts or {}).get(f, []) if r == label and abs(a - onset) <= 0.5]
            if near:
                delays.append(min(near))
    return Report(rules, _f(event.results_overall_metrics()["f_measure"]["f_measure"]),
                  _f(segment.results_overall_metrics()["f_measure"]["f_measure"]), false,
                  sum(durations.get(f, 0.0) for f in negatives), statistics.median(delays) if delays else None)


def _f(x: float) -> float:
    return 0.0 if x is None or np.isnan(x) else float(x)


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
