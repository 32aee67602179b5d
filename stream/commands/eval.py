"""`stream eval <what>`: score outputs against references. One module per evaluation, `stream.commands.eval_<what>`,
each with `register(subparsers)` like a top-level command; add yours to `EVALUATIONS`."""

from __future__ import annotations

import argparse
import importlib

EVALUATIONS = [
    "der",
    "eer",
    "sed",
    "beats",
    "chords",
    "fingerprint",
]


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("eval", help="score outputs against references and draw plots")
    evals = parser.add_subparsers(dest="evaluation", metavar="WHAT", required=True)
    for name in EVALUATIONS:
        importlib.import_module(f"stream.commands.eval_{name}").register(evals)
