"""`stream train-ivector --data FOLDER --out CKPT`: train an i-vector extractor (UBM, T, LDA) in JAX."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DESCRIPTION = """\
Train the classic i-vector speaker model on a labelled folder of audio (speaker = first-level subfolder, or the
first field of a top-level file's name, as for `stream train-embedding`): a diagonal-covariance UBM by EM on
MFCC + deltas with CMVN (grown by splitting), the total-variability matrix T by EM on Baum-Welch statistics of
4 s segments, then LDA; embeddings are LDA-projected, length-normalised i-vectors (`stream eval eer --ivector CKPT`).

CKPT (.npz) is rewritten atomically after every EM iteration. If the run is interrupted (even killed), run the same
command with --resume: it continues from the last iteration saved and ends with the same model.
"""

# IvectorConfig fields settable from the command line (a resumed run keeps the checkpoint's).
OPTIONS = [
    ("components", int, "UBM Gaussians (power of two)"),
    ("rank", int, "i-vector dimension"),
    ("lda_dim", int, "dimension after LDA"),
    ("ubm_iters_per_split", int, "UBM EM iterations after each split"),
    ("ubm_final_iters", int, "UBM EM iterations at full size"),
    ("tvm_iters", int, "EM iterations of T"),
    ("seed", int, "random seed of T's initialisation"),
]


def register(sub: argparse._SubParsersAction) -> None:
    from nodes.speakers.ivector.config import IvectorConfig

    d = IvectorConfig()
    parser = sub.add_parser("train-ivector", help="train an i-vector extractor (UBM + T + LDA), resumable",
                            description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, metavar="FOLDER", help="labelled training audio")
    parser.add_argument("--out", type=Path, required=True, metavar="CKPT", help="checkpoint file (.npz)")
    parser.add_argument("--resume", action="store_true", help="continue the run saved in CKPT")
    for name, kind, help_ in OPTIONS:
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, help=f"{help_} (default {getattr(d, name)})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nodes.embedding.train import labelled_files
    from nodes.speakers.ivector.config import IvectorConfig
    from nodes.speakers.ivector.model import Checkpoint
    from nodes.speakers.ivector.train import done_iterations, total_iterations, train
    from stream.errors import ConfigError

    files = labelled_files(args.data)
    names = [str(f.path.relative_to(args.data)) for f in files]
    given = {name: getattr(args, name) for name, _, _ in OPTIONS if getattr(args, name) is not None}
    if args.resume:
        ckpt = Checkpoint.load(args.out)
        if ckpt.files != names:
            raise ConfigError(f"{args.out} was trained on {len(ckpt.files)} other files; resume on the same "
                              "--data folder or start a new --out")
        if given:
            raise ConfigError(f"--resume keeps the checkpoint's settings; drop {', '.join(given)}")
    elif args.out.exists():
        raise ConfigError(f"{args.out} exists: pass --resume to continue that run, or choose another --out")
    else:
        ckpt = Checkpoint(IvectorConfig(**given), names)
    print(f"i-vector: {len(files)} files, {len({f.speaker for f in files})} speakers; "
          f"{ckpt.stage} stage, iteration {done_iterations(ckpt)} of {total_iterations(ckpt)}", flush=True)
    train(ckpt, files, args.out, progress=sys.stderr.isatty())
    print(f"done: {args.out}")
    return 0
