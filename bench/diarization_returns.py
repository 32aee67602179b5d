"""Do speakers who come back after a long absence get their old label? (issue 18, the 60-minute meeting)

For every reference speaker silent for at least ``--away`` seconds and then speaking again, take their next
``--window`` seconds of speech after the return and measure, in the hypothesis RTTM, how much of it carries a
label other than the one the optimal (DER) mapping gives that speaker over the whole file, and how much of their
speech passes before their own label is heard again. Run on `bench/diarization_der.py --out` RTTMs:

    .venv/bin/python bench/diarization_der.py --sets sim-long --out /tmp/long
    .venv/bin/python bench/diarization_returns.py /work/simdata/long/reference.rttm /tmp/long/online-0.5/sim-long/long-00.rttm
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pyannote.metrics.diarization import DiarizationErrorRate

from nodes.diarization.evaluate import annotation
from stream.rttm import Turn, read_rttm

GRID = 0.1  # s


def frames_of(turns: list[Turn]) -> dict[int, set[str]]:
    """Grid frame -> labels active in it."""
    out: dict[int, set[str]] = {}
    for t in turns:
        for f in range(round(t.start / GRID), round(t.end / GRID)):
            out.setdefault(f, set()).add(t.label)
    return out


def returns(reference: list[Turn], hypothesis: list[Turn], uri: str, away: float, window: float) -> list[dict]:
    """One row per return: speaker, time back, seconds under another label, seconds of speech until own label."""
    mapping = DiarizationErrorRate().optimal_mapping(annotation(uri, reference), annotation(uri, hypothesis))
    own_label = {ref: hyp for hyp, ref in mapping.items()}
    heard = frames_of(hypothesis)
    rows = []
    by_speaker: dict[str, list[Turn]] = {}
    for t in sorted(reference):
        by_speaker.setdefault(t.label, []).append(t)
    for speaker, turns in by_speaker.items():
        for before, after in zip(turns, turns[1:]):
            if after.start - before.end < away:
                continue
            speech = [f for t in turns if t.start >= after.start
                      for f in range(round(t.start / GRID), round(t.end / GRID))][: round(window / GRID)]
            own = own_label.get(speaker)
            detected = [f for f in speech if f in heard]
            wrong = [f for f in detected if own not in heard[f]]
            first = next((i for i, f in enumerate(speech) if own in heard.get(f, ())), None)
            rows.append({"speaker": speaker, "back_at": after.start, "away": after.start - before.end,
                         "other_label_s": len(wrong) * GRID,
                         "until_own_s": first * GRID if first is not None else float("inf")})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path)
    parser.add_argument("hypothesis", type=Path)
    parser.add_argument("--away", type=float, default=300.0, help="s of silence that make an absence")
    parser.add_argument("--window", type=float, default=60.0, help="s of the speaker's speech examined after it")
    args = parser.parse_args()
    references, hypotheses = read_rttm(args.reference), read_rttm(args.hypothesis)
    for uri, reference in references.items():
        rows = returns(reference, hypotheses.get(uri, []), uri, args.away, args.window)
        print(f"{uri}: {len(rows)} returns after >= {args.away:.0f} s away")
        for r in rows:
            print(f"  {r['speaker']:>8} back at {r['back_at']:6.0f} s after {r['away']:4.0f} s: "
                  f"{r['other_label_s']:5.1f} s of the next {args.window:.0f} s of speech under another label, "
                  f"own label after {r['until_own_s']:.1f} s of speech")
        worst = max((r["other_label_s"] for r in rows), default=0.0)
        late = sum(r["until_own_s"] > 2.0 for r in rows)
        print(f"  worst {worst:.1f} s under another label; own label later than 2 s of speech in {late} of {len(rows)}")


if __name__ == "__main__":
    main()
