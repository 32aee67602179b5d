"""Full fuzzing profile: 10,000 generated inputs per node (and per wire/config target), failures counted.

    nice -n 10 .venv/bin/python bench/fuzz.py [--examples 10000] [--max-minutes 20] [--kinds loudness,sinks]

The harness (what is generated, what is asserted) is tests/fuzz/harness.py, shared with the CI profile. Here a
failure does not stop the run: each is recorded (kind and first line) and the table gives, per target, inputs
tried, how they ended (ok / malformed / rejected / accepted end-of-stream), failures, RSS growth and wall time.
`--max-minutes` bounds each target (model nodes run a model per input: on a loaded machine they get fewer).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisException

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "fuzz"))

from harness import Target, node_kinds, wire_frames  # noqa: E402
from stream.errors import MessageError  # noqa: E402
from stream.message import decode  # noqa: E402


class _Budget(Exception):
    """The target's time budget is spent."""


def fuzz_node(kind: str, examples: int, max_s: float, tmp: Path) -> dict:
    target = Target.start(kind, tmp)
    failures: Counter[str] = Counter()
    deadline = time.monotonic() + max_s

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck),
              phases=("generate",))
    @given(frames=wire_frames(target.runner.node.accepts, target.seqs))
    def check(frames: list[bytes]) -> None:
        if time.monotonic() > deadline:
            raise _Budget
        try:
            target.feed(frames)
        except Exception as exc:  # noqa: BLE001 - every failure is counted, the run goes on
            failures[f"{type(exc).__name__}: {str(exc).splitlines()[0][:100] if str(exc) else ''}"] += 1

    start = time.monotonic()
    try:
        check()
    except (_Budget, HypothesisException):
        pass
    row = {"target": kind, "tried": target.tried, "results": dict(target.results), "failures": failures,
           "rss_mb": target.rss_growth() / 2**20, "seconds": time.monotonic() - start}
    target.close()
    return row


def fuzz_decoder(examples: int) -> dict:
    tried, failures = 0, Counter()

    @settings(max_examples=examples, deadline=None, database=None, phases=("generate",))
    @given(frames=st.lists(st.binary(max_size=256), max_size=4))
    def check(frames: list[bytes]) -> None:
        nonlocal tried
        tried += 1
        try:
            decode(frames)
        except MessageError:
            pass
        except Exception as exc:  # noqa: BLE001
            failures[type(exc).__name__] += 1

    start = time.monotonic()
    check()
    return {"target": "wire decoder", "tried": tried, "results": {}, "failures": failures, "rss_mb": 0.0,
            "seconds": time.monotonic() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--max-minutes", type=float, default=20.0)
    parser.add_argument("--kinds", default="", help="comma-separated node kinds (default: every node)")
    args = parser.parse_args()
    kinds = args.kinds.split(",") if args.kinds else node_kinds()
    rows = [fuzz_decoder(args.examples)]
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            rows.append(fuzz_node(kind, args.examples, args.max_minutes * 60, Path(tmp)))
            print(rows[-1], file=sys.stderr, flush=True)
    print("| target | inputs tried | ok | malformed | rejected | end-of-stream | failures | RSS growth | wall |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        res = r["results"]
        print(f"| {r['target']} | {r['tried']} | {res.get('ok', 0)} | {res.get('malformed', 0)} | "
              f"{res.get('rejected', 0)} | {res.get('eos', 0)} | {sum(r['failures'].values())} | "
              f"{r['rss_mb']:.0f} MB | {r['seconds']:.0f} s |")
    for r in rows:
        for failure, n in r["failures"].items():
            print(f"- {r['target']}: {n} x {failure}")


if __name__ == "__main__":
    main()
