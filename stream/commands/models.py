"""`stream models list|info|convert`: the model registry (stream.models) from the command line."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("models", help="list models, show one, convert to our JAX weights",
                            description="Models stream can use: where each file comes from, its license, and "
                            "its conversion to the project's weight format (cached, checksummed).")
    inner = parser.add_subparsers(dest="action", metavar="ACTION")
    inner.add_parser("list", help="one line per model: name, file present?, description").set_defaults(func=list_)
    info = inner.add_parser("info", help="everything about one model")
    info.add_argument("name")
    info.set_defaults(func=info_)
    convert = inner.add_parser("convert", help="convert one model (or all present) and cache the result")
    convert.add_argument("name", nargs="?", help="model name (default: every model whose file is present)")
    convert.add_argument("--force", action="store_true", help="convert again even if cached")
    convert.set_defaults(func=convert_)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def _status(name: str) -> dict[str, str]:
    from stream.models import cached_path, get_spec, sha256
    from stream.paths import model_dir

    spec = get_spec(name)
    source = model_dir() / spec.file
    row = {"name": spec.name, "description": spec.description, "source": spec.source, "license": spec.license,
           "file": str(source), "present": "yes" if source.is_file() else "no", "converted": "no"}
    if source.is_file():
        cached = cached_path(name)
        row["cache"] = str(cached)
        checksum = cached.with_suffix(".sha256")
        if cached.is_file() and checksum.is_file():
            ok = sha256(cached) == checksum.read_text().strip()
            row["converted"] = "yes" if ok else "corrupt (run convert --force)"
            row["sha256"] = checksum.read_text().strip()
    return row


def list_(args: argparse.Namespace) -> int:
    from stream.models import MODELS

    print(f"{'name':<26} {'present':<8} {'converted':<10} description")
    for name in MODELS:
        row = _status(name)
        print(f"{name:<26} {row['present']:<8} {row['converted'][:10]:<10} {row['description']}")
    return 0


def info_(args: argparse.Namespace) -> int:
    for key, value in _status(args.name).items():
        print(f"{key + ':':<13} {value}")
    return 0


def convert_(args: argparse.Namespace) -> int:
    from stream.models import MODELS, convert, source_path

    names = [args.name] if args.name else [n for n in MODELS if _status(n)["present"] == "yes"]
    for name in names:
        source_path(name)  # a clear error if the file is missing
        print(f"{name}: {convert(name, force=args.force)}")
    return 0
