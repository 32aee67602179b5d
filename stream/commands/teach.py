"""`stream teach`: a custom alert rule from 3-10 example recordings (see nodes/sed/teach.py for how).

Adds `[rules.NAME]` to the rules file (created if missing) and writes NAME.npz beside it; run the node or
`stream detect --rules FILE` with that file. Keep the default rules too: `cp configs/alerts.toml my.toml` first.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("teach", help="a custom sound-alert rule from 3-10 example recordings")
    p.add_argument("name", metavar="NAME", help="rule name: lower-case letters, digits, _ (e.g. my_doorbell)")
    p.add_argument("examples", nargs="+", type=Path, metavar="EXAMPLE", help="3-10 recordings of the sound")
    p.add_argument("--rules", type=Path, required=True, metavar="FILE.toml", help="rules file to add the rule to")
    p.add_argument("--negatives", type=Path, metavar="DIR",
                   help="recordings of the place without the sound (background, other sounds): the threshold is "
                   "set above all of them")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nodes.capture.files import audio_files
    from nodes.sed.teach import check_new_rule, teach, write_rule
    from stream.commands.detect import load

    check_new_rule(args.rules, args.name)  # before minutes of work
    examples = audio_files(args.examples)
    negatives = audio_files([args.negatives]) if args.negatives else []
    model, _ = load(None)
    taught = teach(model, examples, negatives)
    npz = write_rule(args.rules, args.name, taught)
    low = float(sorted(taught.positives)[len(taught.positives) // 4])
    print(f"rule {args.name!r}: {len(taught.prototypes)} prototypes from {len(examples)} examples -> {npz}; "
          f"threshold {taught.threshold:.3f} (examples' low quartile {low:.3f}, negatives at most "
          f"{taught.negative_max:.3f} over {len(negatives)} files + generated noise)")
    if low <= taught.negative_max:
        print(f"stream teach: warning: the negatives score as high as the examples: {args.name!r} will miss or "
              "false-alarm; give cleaner or more distinct examples", file=sys.stderr)
    return 0
