"""`stream train-segmentation --data FOLDER --out WEIGHTS`: fine-tune segmentation-3.0 on labelled conversations."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DESCRIPTION = """\
Fine-tune the segmentation model (pyannote segmentation-3.0 architecture: SincNet, 4-layer BiLSTM, 7 powerset
classes over 3 local speakers) with the permutation-invariant powerset loss on a folder of labelled conversations:
audio files plus a reference.rttm naming them by stem (and optionally a reference.uem), e.g. the tune half written
by bench/simulate_meetings.py. Each step trains on --batch random --chunk-s second crops, augmented with
reverberation, noise and level changes (nodes/segmentation/chunks.py).

The run checkpoints to CKPT (default WEIGHTS with .ckpt.npz) every --checkpoint-every steps: running the same
command again resumes from it, also after kill -9 (the resumed run equals the uninterrupted one). --until STEP
stops early, to resume later. At the end WEIGHTS (.npz) is written; use it with
  stream diarize --segmentation WEIGHTS ...      or   segmentation node config: weights = "WEIGHTS"
The loss of a fixed batch of chunks (drawn with another seed from the same data) is printed before and after.
"""

OPTIONS = [  # TrainConfig fields settable from the command line
    ("steps", int, "total training steps"),
    ("batch", int, "chunks per step"),
    ("chunk_s", float, "seconds per chunk"),
    ("lr", float, "peak learning rate"),
    ("checkpoint_every", int, "steps between checkpoints"),
    ("seed", int, "random seed"),
]


def register(sub: argparse._SubParsersAction) -> None:
    from nodes.segmentation.train_config import TrainConfig

    d = TrainConfig()
    p = sub.add_parser("train-segmentation", help="fine-tune the segmentation model (permutation-invariant loss)",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, metavar="FOLDER", help="labelled conversations")
    p.add_argument("--out", type=Path, required=True, metavar="WEIGHTS", help="fine-tuned weights file (.npz)")
    p.add_argument("--checkpoint", type=Path, metavar="CKPT", help="checkpoint (default WEIGHTS.ckpt.npz)")
    p.add_argument("--init", metavar="WEIGHTS", default="", help="start from these weights (default segmentation-3.0)")
    p.add_argument("--until", type=int, metavar="STEP", help="stop at STEP (run the command again to go on)")
    for name, kind, help_ in OPTIONS:
        p.add_argument(f"--{name.replace('_', '-')}", type=kind, help=f"{help_} (default {getattr(d, name)})")
    p.set_defaults(func=run)


def checkpoint_path(out: Path) -> Path:
    return out.with_name(out.name.removesuffix(".npz") + ".ckpt.npz")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from nodes.segmentation.chunks import load_conversations, training_batch
    from nodes.segmentation.finetune import batch_loss, load_checkpoint, new_state, save_checkpoint, train
    from nodes.segmentation.model import SAMPLE_RATE
    from nodes.segmentation.train_config import TrainConfig
    from nodes.segmentation.weights import load_segmentation, save_weights
    from stream.errors import ConfigError

    given = {name: getattr(args, name) for name, _, _ in OPTIONS if getattr(args, name) is not None}
    ckpt = args.checkpoint or checkpoint_path(args.out)
    if ckpt.exists():
        state = load_checkpoint(ckpt)
        differ = {k: v for k, v in given.items() if getattr(state.config, k) != v}
        if differ or state.data != str(args.data.resolve()):
            raise ConfigError(f"{ckpt} holds a run on {state.data} with {state.config}; this command asks for "
                              f"{args.data.resolve()} {differ or ''}: run the same command to resume, or delete "
                              f"{ckpt} to start over")
        print(f"resuming from {ckpt} at step {state.step} of {state.config.steps}")
    else:
        state = new_state(TrainConfig(**given), args.data, load_segmentation(args.init))
        save_checkpoint(state, ckpt)
    cfg = state.config
    conversations = load_conversations(args.data)
    hours = sum(len(c.audio) for c in conversations) / 16000 / 3600
    print(f"{len(conversations)} conversations ({hours:.2f} h) in {args.data}; {cfg.steps} steps of {cfg.batch} x "
          f"{cfg.chunk_s:g} s, lr {cfg.lr:g}")
    fixed = training_batch(conversations, cfg.batch, round(cfg.chunk_s * SAMPLE_RATE), cfg.augmentation, cfg.seed + 1_000_003, 0)
    print(f"fixed-batch loss at step {state.step}: {float(batch_loss(state.params, *fixed)):.4f}", flush=True)
    losses = train(state, conversations, ckpt, until=args.until)
    print(f"fixed-batch loss at step {state.step}: {float(batch_loss(state.params, *fixed)):.4f}"
          + (f" (training loss {losses[0]:.4f} -> {sum(losses[-20:]) / len(losses[-20:]):.4f})" if losses else ""))
    if state.step < cfg.steps:
        print(f"stopped at step {state.step} of {cfg.steps}; run the same command again (without --until) to go on")
        return 0
    save_weights(state.params, args.out, {"base": args.init or "segmentation-3.0", "data": state.data,
                                          "steps": state.step, "config": dataclasses.asdict(cfg)})
    print(f"weights {args.out} (use: stream diarize --segmentation {args.out} ...)", file=sys.stdout)
    return 0
