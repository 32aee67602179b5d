"""`stream eval fingerprint`: identification accuracy and false matches of the fingerprint node on query files.

Queries come from a CSV with columns `audio` (path, relative to the CSV), `track` (the indexed track the audio is
taken from, empty for audio that is not in the index) and `offset` (s into the track at the query's start). Each
query runs through the live node (`match_file`). A query is *correct within N s* when the node's first event
comes at most N s into the query and names the right track at an offset within 0.5 s of the truth; any event
naming another track, or any event on unindexed audio, is a *false match*.
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass
from pathlib import Path

OFFSET_TOL_S = 0.5


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fingerprint", help="fingerprint identification: correct within N s, false matches")
    p.add_argument("--index", type=Path, required=True, metavar="DIR", help="index from `stream fingerprint add`")
    p.add_argument("--queries", type=Path, required=True, metavar="CSV", help="audio,track,offset per query")
    p.add_argument("--within", type=float, default=5.0, metavar="S", help="seconds allowed to identify (5)")
    p.set_defaults(func=run)


@dataclass(frozen=True)
class QueryResult:
    track: str  # truth ("" = unindexed)
    duration: float  # s of query audio
    first_correct: float | None  # s into the query of the first correct event
    first_event: float | None  # s into the query of the first event
    false_matches: int
    elapsed: float  # s of wall time
    named: tuple[str, ...]  # the tracks the events named, in order


def score_query(audio: Path, track: str, offset: float, index, config=None) -> QueryResult:
    from nodes.fingerprint.files import match_file

    result = match_file(audio, index, config)
    correct = [e for e in result.events if e["track"] == track
               and abs(e["offset"] - (offset + e["speed"] * e["t_audio"])) <= OFFSET_TOL_S]
    false = [e for e in result.events if e["track"] != track]
    return QueryResult(track, result.duration, correct[0]["t_audio"] if correct else None,
                       result.events[0]["t_audio"] if result.events else None, len(false), result.elapsed,
                       tuple(e["track"] for e in result.events))


def summarise(results: list[QueryResult], within: float) -> dict[str, float]:
    indexed = [r for r in results if r.track]
    unindexed = [r for r in results if not r.track]
    times = sorted(r.first_correct for r in indexed if r.first_correct is not None)
    ok = sum(1 for r in indexed if r.first_event is not None and r.first_event <= within
             and r.first_correct == r.first_event)
    return {"queries": len(indexed), "correct": ok, "accuracy": ok / max(len(indexed), 1),
            "p50_time_s": times[len(times) // 2] if times else float("nan"),
            "false_matches_indexed": sum(r.false_matches for r in indexed),
            "unindexed_minutes": sum(r.duration for r in unindexed) / 60,
            "false_matches_unindexed": sum(r.false_matches for r in unindexed),
            "rtf": sum(r.elapsed for r in results) / max(sum(r.duration for r in results), 1e-9)}


def run(args: argparse.Namespace) -> int:
    from nodes.fingerprint.index import FingerprintIndex

    index = FingerprintIndex.load(args.index)
    with open(args.queries, newline="") as f:
        rows = list(csv.DictReader(f))
    results = [score_query(args.queries.parent / r["audio"], r["track"], float(r["offset"] or 0), index) for r in rows]
    s = summarise(results, args.within)
    print(f"indexed queries: {s['correct']} of {s['queries']} correct within {args.within:g} s "
          f"({100 * s['accuracy']:.1f} %), median time to a correct match {s['p50_time_s']:.1f} s, "
          f"false matches {s['false_matches_indexed']:.0f}")
    print(f"unindexed audio: {s['unindexed_minutes']:.1f} min, false matches {s['false_matches_unindexed']:.0f}")
    print(f"RTF {s['rtf']:.4f}")
    return 0
