"""`stream train-embedding --data FOLDER --model xvector|dvector --out CKPT`: train a baseline speaker encoder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DESCRIPTION = """\
Train an x-vector (TDNN + statistics pooling) or d-vector (LSTM) speaker encoder in JAX with AAM-softmax on a
labelled folder of audio: a file's speaker is its first-level subfolder, or, for files directly in FOLDER, the
first field of its name ('19-198-0001.flac' -> 19). Each step trains on random crops of --crop-frames frames
(Kaldi fbank, 10 ms) of --batch speakers. CKPT (.npz) is written every --checkpoint-every steps and at the end;
--resume continues a run from CKPT (same data) up to --steps; --until STEP stops a run early, to resume later
(the resumed run is exactly the uninterrupted one: the batch of each step depends only on --seed and the step).

--eval FOLDER (labelled the same way, speakers disjoint from the training ones) prints EER and minDCF over all
pairs of its files, before training (random weights) and after.

Training uses as many CPU threads as XLA is given; to keep it on one core, run it as
  XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" taskset -c 0 stream train-embedding ...
"""


# TrainConfig fields settable from the command line; unset ones keep the checkpoint's value on --resume.
OPTIONS = [
    ("steps", int, "total training steps"),
    ("batch", int, "crops per step"),
    ("crop_frames", int, "frames per crop"),
    ("lr", float, "peak learning rate"),
    ("margin", float, "AAM margin, radians"),
    ("scale", float, "AAM scale"),
    ("margin_warmup", int, "steps to ramp the margin up from 0"),
    ("checkpoint_every", int, "steps between checkpoints"),
    ("seed", int, "random seed"),
]


def register(sub: argparse._SubParsersAction) -> None:
    from nodes.embedding.train_config import NETWORKS, TrainConfig

    d = TrainConfig()
    parser = sub.add_parser("train-embedding", help="train an x-vector / d-vector speaker encoder (AAM-softmax)",
                            description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, metavar="FOLDER", help="labelled training audio")
    parser.add_argument("--model", required=True, choices=NETWORKS, help="network to train")
    parser.add_argument("--out", type=Path, required=True, metavar="CKPT", help="checkpoint file (.npz)")
    parser.add_argument("--resume", action="store_true", help="continue the run saved in CKPT")
    parser.add_argument("--until", type=int, metavar="STEP", help="stop at STEP (continue later with --resume)")
    parser.add_argument("--eval", type=Path, metavar="FOLDER", help="labelled audio of other speakers: report EER")
    parser.add_argument("--mean-s", type=float, metavar="SECONDS",
                        help="x-vector only: subtract a causal mean of the last SECONDS of fbank instead of the "
                        "crop's or utterance's mean, making it streamable (exact incremental embeddings)")
    for name, kind, help_ in OPTIONS:
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, help=f"{help_} (default {getattr(d, name)})")
    parser.set_defaults(func=run)


def evaluate(state: object, files: list, features: list) -> str:
    """EER / minDCF of `state`'s network over all pairs of the evaluation files, as `stream eval eer` computes it."""
    import numpy as np

    from nodes.embedding.train import embed_utterances
    from nodes.speakers.scoring import cosine
    from nodes.speakers.metrics import verification_scores

    emb = embed_utterances(state.kind, state.model_config, state.params["model"], features)
    speakers = np.array([f.speaker for f in files])
    i, j = np.triu_indices(len(files), k=1)
    scores = cosine(emb, emb)[i, j]
    same = speakers[i] == speakers[j]
    result = verification_scores(scores[same], scores[~same])
    return (f"EER {result.eer:.2f} %, minDCF {result.min_dcf:.3f} ({result.targets} target / "
            f"{result.impostors} impostor trials)")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from nodes.embedding.train import ARCHITECTURES, labelled_files, load_checkpoint, load_features, new_state, train
    from nodes.embedding.train_config import TrainConfig
    from stream.errors import ConfigError

    files = labelled_files(args.data)
    given = {name: getattr(args, name) for name, _, _ in OPTIONS if getattr(args, name) is not None}
    if args.resume:
        state = load_checkpoint(args.out)
        if state.kind != args.model:
            raise ConfigError(f"{args.out} holds a {state.kind}, not a {args.model}; pass --model {state.kind}")
        state.train_config = cfg = dataclasses.replace(state.train_config, **given)
    elif args.out.exists():
        raise ConfigError(f"{args.out} exists: pass --resume to continue that run, or choose another --out")
    else:
        cfg = TrainConfig(**given)
        if args.mean_s is not None and args.model != "xvector":
            raise ConfigError("--mean-s applies to --model xvector only")
        sizes = {} if args.mean_s is None else {"mean_frames": round(args.mean_s * 100)}
        model_config = ARCHITECTURES[args.model].config(**sizes)
        state = new_state(args.model, model_config, cfg, sorted({f.speaker for f in files}))
    print(f"{args.model}: {len(files)} files, {len(state.classes)} speakers, from step {state.step} to {cfg.steps}")
    if args.eval:
        eval_files = labelled_files(args.eval)
        shared = {f.speaker for f in eval_files} & set(state.classes)
        if shared:
            raise ConfigError(f"--eval shares {len(shared)} speakers with the training data (e.g. {min(shared)}); "
                              "evaluate on speakers the network never saw")
        eval_features = load_features([f.path for f in eval_files])
        if state.step == 0:
            print(f"random weights: {evaluate(state, eval_files, eval_features)}")
    losses = train(state, files, args.out, progress=sys.stderr.isatty(), until=args.until)
    if losses:
        print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f} over {len(losses)} steps; checkpoint {args.out}")
    if args.eval:
        print(f"trained (step {state.step}): {evaluate(state, eval_files, eval_features)}")
    return 0
