"""Full fuzzing profile: 10,000 generated inputs per target, failures counted (bench/RESULTS.md, "Reliability:
bugs and fuzzing").

    nice -n 15 .venv/bin/python bench/fuzz.py [--examples 10000] [--max-minutes 20] [--targets wire,loudness]
                                              [--rows rows.jsonl]

Targets: "wire" (the wire decoder on random frames), "configs" (every node kind's `[nodes.config]` table, the
examples spread over the kinds), "graph" (whole graph tables) and every node kind that takes messages
(`harness.node_kinds()`). The harness (what is generated, what is asserted) is tests/fuzz/harness.py, shared with
the CI profile. Here a failure does not stop the run: each is recorded (kind and first line) and the table gives,
per target, inputs tried, how they ended (ok / malformed / rejected / accepted end-of-stream; for configs: ok /
ConfigError), failures, RSS growth, wall time and why the target stopped (examples reached, the time budget, or
hypothesis itself). `--rows` appends one JSON row per target (run targets one at a time, print the table once).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import psutil
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisException

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "fuzz"))

from harness import GRAPH_TABLES, Target, config_classes, config_tables, node_kinds, wire_frames  # noqa: E402
from stream.errors import ConfigError, MessageError  # noqa: E402
from stream.graph import graph_from_table  # noqa: E402
from stream.message import decode  # noqa: E402
from stream.node import parse_config  # noqa: E402


class _Budget(Exception):
    """The target's time budget is spent."""


def run(strategy: st.SearchStrategy, feed: Callable[[object], str], examples: int, max_s: float) -> dict:
    """Feed `examples` generated inputs (or as many as `max_s` allows) to `feed`, which returns how each ended;
    any exception out of it is a failure, recorded, and the run goes on."""
    results: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    deadline, start, rss = time.monotonic() + max_s, time.monotonic(), psutil.Process().memory_info().rss

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck),
              phases=("generate",))
    @given(value=strategy)
    def check(value: object) -> None:
        if time.monotonic() > deadline:
            raise _Budget
        try:
            results[feed(value)] += 1
        except Exception as exc:  # noqa: BLE001 - every failure is counted, the run goes on
            first = str(exc).splitlines()[0][:100] if str(exc) else ""
            failures[f"{type(exc).__name__}: {first}"] += 1
            results["failure"] += 1

    stopped = "examples"
    try:
        check()
    except _Budget:
        stopped = "time budget"
    except (HypothesisException, Exception) as exc:  # noqa: BLE001 - the generator itself (a harness bug): say so
        stopped = f"harness: {type(exc).__name__}: {str(exc).splitlines()[0][:80] if str(exc) else ''}"
    return {"tried": sum(results.values()), "results": dict(results), "failures": dict(failures),
            "rss_mb": (psutil.Process().memory_info().rss - rss) / 2**20, "seconds": time.monotonic() - start,
            "stopped": stopped}


def fuzz_node(kind: str, examples: int, max_s: float, tmp: Path) -> dict:
    target = Target.start(kind, tmp)
    try:
        row = run(wire_frames(target.runner.node.accepts, target.clocks), target.feed, examples, max_s)
        row["rss_mb"] = target.rss_growth() / 2**20  # since the node was set up (its model loaded)
    finally:
        target.close()
    return {"target": kind, **row}


def decoded(frames: list[bytes]) -> str:
    try:
        msg = decode(frames)
    except MessageError:
        return "malformed"
    assert msg.data.nbytes == len(frames[1]) and msg.data.shape == msg.header.shape
    return "ok"


def parsed(parse: Callable[[], object]) -> str:
    try:
        parse()
    except ConfigError:
        return "malformed"
    return "ok"


def fuzz_configs(examples: int, max_s: float) -> dict:
    classes = sorted(config_classes().items())
    tables = st.sampled_from(classes).flatmap(lambda kc: st.tuples(st.just(kc), config_tables(kc[1])))
    row = run(tables, lambda v: parsed(lambda: parse_config(v[0][1], v[1], v[0][0])), examples, max_s)
    return {"target": f"node configs ({len(classes)} kinds)", **row}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--max-minutes", type=float, default=20.0)
    parser.add_argument("--targets", default="", help="comma-separated: wire, configs, graph, node kinds "
                                                       "(default: all)")
    parser.add_argument("--rows", type=Path, help="append each target's row as JSON to this file")
    args = parser.parse_args()
    targets = args.targets.split(",") if args.targets else ["wire", "configs", "graph", *node_kinds()]
    max_s, rows = args.max_minutes * 60, []
    with tempfile.TemporaryDirectory() as tmp:
        for name in targets:
            if name == "wire":
                row = {"target": "wire decoder", **run(st.lists(st.binary(max_size=256), max_size=4), decoded,
                                                       args.examples, max_s)}
            elif name == "configs":
                row = fuzz_configs(args.examples, max_s)
            elif name == "graph":
                row = {"target": "graph tables", **run(GRAPH_TABLES, lambda raw: parsed(
                    lambda: graph_from_table(raw, Path("fuzz.toml"))), args.examples, max_s)}
            else:
                row = fuzz_node(name, args.examples, max_s, Path(tmp))
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
            if args.rows:
                with args.rows.open("a") as f:
                    f.write(json.dumps(row) + "\n")
    print_table(rows)


def print_table(rows: list[dict]) -> None:
    print("| target | inputs tried | ok | malformed | rejected | end-of-stream | failures | RSS growth | wall "
          "| stopped |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        res = r["results"]
        print(f"| {r['target']} | {r['tried']:,} | {res.get('ok', 0):,} | {res.get('malformed', 0):,} | "
              f"{res.get('rejected', 0):,} | {res.get('eos', 0):,} | {sum(r['failures'].values())} | "
              f"{r['rss_mb']:.1f} MB | {r['seconds']:.0f} s | {r['stopped']} |")
    for r in rows:
        for failure, n in r["failures"].items():
            print(f"- {r['target']}: {n} x {failure}")


if __name__ == "__main__":
    main()
