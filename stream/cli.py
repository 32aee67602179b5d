"""`stream` command line: one subcommand per module in `stream.commands`, each with `register(subparsers)`.

A module's `register` adds its parser and sets `func(args) -> int` (the exit code); heavy imports (JAX, models)
happen inside `func` where they can (the trainers' parsers import their configs to show defaults); a command's
start-up imports only its own module (`build_parser(command)`).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from stream import __version__
from stream.errors import StreamError

# Order is the order of `stream --help`.
COMMANDS = [
    "run",
    "listen",
    "devices",
    "diarize",
    "detect",
    "teach",
    "beats",
    "eval",
    "models",
    "embed",
    "enroll",
    "verify",
    "identify",
    "train_embedding",
    "train_ivector",
    "train_scene",
    "train_segmentation",
    "keys",
    "chords",
    "fingerprint",
    "plot",
]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or only ``command``'s subcommand: a command's start-up then imports no other
    command's module."""
    parser = argparse.ArgumentParser(prog="stream", description="Real-time audio analysis service.")
    parser.add_argument("--version", action="version", version=f"stream {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    module = (command or "").replace("-", "_")
    for name in [module] if module in COMMANDS else COMMANDS:
        importlib.import_module(f"stream.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)  # options before it are -v / -vv only
    parser = build_parser(command)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except StreamError as exc:
        print(f"stream {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
