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
                   help="recordings of the place without the sound (background, other sounds): counter-examples, "
                   "and the threshold sits above what each of them scores with its own patches left out (without "
                   "them, a shipped bank of speech, music and household sounds and generated noise stand in)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from nodes.capture.files import audio_files
    from nodes.sed.teach import check_new_rule, teach, write_rule
    from stream.commands.detect import load

    check_new_rule(args.rules, args.name)  # before minutes of work
    examples = audio_files(args.examples)
    negatives = audio_files([args.negatives]) if args.negatives else []
    model, _ = load(None)
    taught = teach(model, examples, negatives)
    npz = write_rule(args.rules, args.name, taught)
    low = float(np.quantile(taught.positives, 0.25))
    print(f"rule {args.name!r}: {len(taught.prototypes)} example and {len(taught.counter)} counter-example embeddings "
          f"from {len(examples)} examples and {len(negatives)} negative files + generated noise + the shipped "
          f"background bank (speech, music, household sounds) -> {npz}; threshold {taught.threshold:.3f} (examples' "
          f"low quartile {low:.3f}; {taught.negative_s / 60:.1f} min of negatives and the bank's recordings, each "
          f"scored without its own patches, at most {taught.negative_max.max():.3f})")
    if low <= taught.threshold:
        print(f"stream teach: warning: a quarter of the examples score below the threshold: {args.name!r} will miss "
              "some; give cleaner or more distinct examples, or negatives that do not contain the sound", file=sys.stderr)
    return 0
