"""`stream verify AUDIO... --db DB --name NAME`: is each file NAME speaking? `--calibrate TRIALS` sets the threshold."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nodes.speakers.plda import Plda

DESCRIPTION = """\
Score each audio file against NAME's enrolled centroid and accept it when score >= threshold.
Scores are cosine similarities, s-normed against the store's cohort when it has one (then about N(0, 1) for
impostors). Output: one tab-separated line per file: file, name, score, threshold, accept|reject.

Calibration (--calibrate TRIALS): embed the trial list's audio ('LABEL ENROL TEST' per line, LABEL 1/0), score
each trial the way verification will (s-normed if --cohort is given now or the store already has a cohort),
and save the threshold at the target false-acceptance rate (--far, default 0.01) or at the equal-error point
(--eer) in the store. Use trials and cohort speakers that are neither enrolled nor tested, e.g. LibriSpeech
train-clean-100 speakers for a store of test-other speakers.

PLDA scoring (--backend plda --plda-train FOLDER, with --calibrate): fit a two-covariance PLDA on 4 s pieces of
FOLDER's labelled audio (speaker = subfolder or first field of the file name; speakers neither enrolled nor
tested), save it in the store and calibrate on its log-likelihood ratios; from then on the store scores with PLDA
instead of cosine / s-norm (later calibrations too).
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("verify", help="accept/reject audio as an enrolled speaker; calibrate the threshold",
                            description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("audio", nargs="*", type=Path, metavar="AUDIO", help="audio files or folders to verify")
    parser.add_argument("--db", type=Path, required=True, help="enrolment store folder")
    parser.add_argument("--name", help="the claimed speaker (required with AUDIO)")
    parser.add_argument("--threshold", type=float, help="override the store's calibrated threshold")
    calib = parser.add_argument_group("calibration")
    calib.add_argument("--calibrate", type=Path, metavar="TRIALS", help="trial list to calibrate the threshold on")
    calib.add_argument("--cohort", nargs="+", type=Path, metavar="AUDIO",
                       help="s-norm cohort: audio files or folders of other speakers (one utterance per file)")
    calib.add_argument("--backend", choices=["cosine", "plda"], default="cosine",
                       help="scoring to calibrate: cosine (s-normed with --cohort) or PLDA (cosine)")
    calib.add_argument("--plda-train", type=Path, metavar="FOLDER",
                       help="labelled audio of other speakers to fit the PLDA on (with --backend plda)")
    point = calib.add_mutually_exclusive_group()
    point.add_argument("--far", type=float, default=0.01, help="target false-acceptance rate (0.01)")
    point.add_argument("--eer", action="store_true", help="calibrate at the equal-error point instead")
    parser.set_defaults(func=run)


def fit_store_plda(model: str, folder: Path | None) -> Plda:
    """A PLDA model for `model`'s embeddings, fitted on 4 s pieces of the labelled audio under `folder`."""
    import numpy as np

    from nodes.embedding.files import load_audio
    from nodes.embedding.train import labelled_files
    from nodes.speakers.lab import pieces
    from nodes.speakers.plda import fit_plda
    from nodes.speakers.systems import campplus
    from stream.errors import ConfigError

    if folder is None:
        raise ConfigError("--backend plda needs --plda-train FOLDER: labelled audio of speakers neither enrolled "
                          "nor tested")
    files = labelled_files(folder)
    waves, speakers = pieces([load_audio(f.path) for f in files], [f.speaker for f in files])
    return fit_plda(campplus(model).embed(waves), np.array(speakers))


def calibrate(args: argparse.Namespace) -> None:
    import numpy as np

    from nodes.capture.files import audio_files
    from nodes.speakers.calibration import calibrate, read_trials
    from nodes.speakers.embeddings import embed_paths
    from nodes.speakers.scoring import score
    from nodes.speakers.store import SpeakerStore

    store = SpeakerStore.open(args.db)
    if args.backend == "plda":
        store.set_plda(fit_store_plda(store.model, args.plda_train))
    if args.cohort:
        paths = audio_files(args.cohort)
        store.set_cohort(embed_paths(store.model, paths), [str(p) for p in paths])
    cohort, plda = (store.cohort, store.cohort_sources), store.plda
    trials = read_trials(args.calibrate)
    index: dict[Path, int] = {}
    for t in trials:
        index.setdefault(t.enrol, len(index))
        index.setdefault(t.test, len(index))
    emb = embed_paths(store.model, list(index))
    enrol = np.array([index[t.enrol] for t in trials])
    test = np.array([index[t.test] for t in trials])
    scores = score(emb, emb, store.cohort, store.plda)[enrol, test]
    threshold = calibrate(scores, np.array([t.target for t in trials]), None if args.eer else args.far,
                          snorm=store.cohort is not None, trials=str(args.calibrate),
                          backend="plda" if store.plda is not None else "cosine")
    with SpeakerStore.edit(args.db, store.model) as store:  # locked: speakers enrolled meanwhile are kept
        if plda is not None:
            store.set_plda(plda)
        if cohort[0] is not None:
            store.set_cohort(*cohort)
        store.set_threshold(threshold)
    frr = f"{100 * threshold.frr:.2f} %" if threshold.frr is not None else "n/a (no target trials)"
    kind = "PLDA LLR" if threshold.backend == "plda" else "s-norm" if threshold.snorm else "cosine"
    print(f"threshold {threshold.value:.4f} ({kind}, {threshold.method}): "
          f"FAR {100 * threshold.far:.2f} %, FRR {frr} on {len(trials)} trials -> saved in {args.db}")


def run(args: argparse.Namespace) -> int:
    from nodes.capture.files import audio_files
    from nodes.speakers.decide import verify
    from nodes.speakers.embeddings import embed_paths
    from nodes.speakers.store import SpeakerStore
    from stream.errors import ConfigError

    if (args.cohort or args.plda_train or args.backend != "cosine") and not args.calibrate:
        raise ConfigError("--cohort, --backend and --plda-train are part of calibration: give them with "
                          "--calibrate TRIALS")
    if args.cohort and args.backend == "plda":
        raise ConfigError("PLDA scoring replaces s-norm: drop --cohort with --backend plda")
    if not args.calibrate and not args.audio:
        raise ConfigError("give AUDIO to verify (with --name), or --calibrate TRIALS")
    if args.calibrate:
        calibrate(args)
    if args.audio:
        if not args.name:
            raise ConfigError("--name NAME is required to verify audio (the speaker it claims to be)")
        store = SpeakerStore.open(args.db)
        paths = audio_files(args.audio)
        decisions = verify(store, args.name, embed_paths(store.model, paths), args.threshold)
        for path, d in zip(paths, decisions):
            print(f"{path}\t{d.name}\t{d.score:.4f}\t{d.threshold:.4f}\t{'accept' if d.accepted else 'reject'}")
    return 0
