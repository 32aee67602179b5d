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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stream.errors import ConfigError


@dataclass(frozen=True)
class VerificationScores:
    """EER (%), its threshold, and normalised minDCF at `p_target` (C_miss = C_fa = 1)."""

    targets: int
    impostors: int
    eer: float  # percent
    threshold: float
    min_dcf: float
    p_target: float


def det_curve(target: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, false-rejection rates, false-acceptance rates), accept if score >= threshold."""
    target, impostor = np.sort(target), np.sort(impostor)
    thresholds = np.unique(np.concatenate([target, impostor, [np.inf]]))
    frr = np.searchsorted(target, thresholds, side="left") / target.size
    far = 1.0 - np.searchsorted(impostor, thresholds, side="left") / impostor.size
    return thresholds, frr, far


def min_dcf(target: np.ndarray, impostor: np.ndarray, p_target: float = 0.01) -> float:
    """Minimum over thresholds of (P_miss p + P_fa (1 - p)) / min(p, 1 - p): NIST SRE's normalised minDCF."""
    _, frr, far = det_curve(target, impostor)
    return float(np.min(frr * p_target + far * (1 - p_target)) / min(p_target, 1 - p_target))


def verification_scores(target: np.ndarray, impostor: np.ndarray, p_target: float = 0.01) -> VerificationScores:
    from nodes.speakers.calibration import threshold_at_eer

    threshold, eer = threshold_at_eer(target, impostor)
    return VerificationScores(len(target), len(impostor), 100 * eer, threshold, min_dcf(target, impostor, p_target),
                              p_target)


def plot_det(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> None:
    """DET curves {label: (frr, far)} on normal-deviate (probit) axes, as NIST draws them, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    ticks = np.array([0.0001, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4])
    lo = 1e-4
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    for label, (frr, far) in curves.items():
        ax.plot(norm.ppf(np.clip(far, lo, 1 - lo)), norm.ppf(np.clip(frr, lo, 1 - lo)), label=label)
    ax.plot(norm.ppf([lo, 0.5]), norm.ppf([lo, 0.5]), color="grey", lw=0.5, ls=":")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_ticks(norm.ppf(ticks))
        axis.set_ticklabels([f"{100 * t:g}" for t in ticks])
    ax.set_xlim(norm.ppf(lo), norm.ppf(0.5))
    ax.set_ylim(norm.ppf(lo), norm.ppf(0.5))
    ax.set_xlabel("false acceptance rate (%)")
    ax.set_ylabel("false rejection rate (%)")
    ax.set_title("DET curve")
    ax.grid(True, lw=0.3)
    ax.legend(loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


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

    from nodes.embedding.api import load_campplus
    from nodes.embedding.files import embed_files

    with tqdm(total=len(paths), unit="file", disable=not sys.stderr.isatty()) as bar:
        emb, errors = embed_files(load_campplus(args.model), paths, progress=bar.update)
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
    parser.add_argument("--model", default="campplus", choices=["campplus"], help="speaker encoder (default campplus)")
    parser.add_argument("--p-target", type=float, default=0.01, help="prior of a target trial for minDCF (0.01)")
    parser.add_argument("--det", type=Path, default=Path("det.png"), help="where to write the DET PNG (det.png)")
    parser.set_defaults(func=run)
