"""`stream train-scene --data FOLDER --out FILE.npz`: fit the scene classifier the SED node loads."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DESCRIPTION = """\
Fit an acoustic scene classifier (logistic regression on mean-pooled YAMNet embeddings) on a folder of labelled
recordings: FOLDER/<label>/<clip>.wav (any audio format, rate and channel count). With --test-fraction > 0, a
stratified, seeded share of each label's clips is held out first and the held-out accuracy printed; the saved
classifier is then fitted on every clip. Files that cannot be decoded are named and skipped."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-scene", help="fit a scene classifier on FOLDER/<label>/*.wav", description=DESCRIPTION)
    p.add_argument("--data", type=Path, required=True, metavar="FOLDER", help="one subfolder of clips per label")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="classifier file to write (.npz)")
    p.add_argument("--hop", type=float, default=0.48, metavar="S", help="s between 0.96 s patches (default 0.48)")
    p.add_argument("--l2", type=float, default=1e-2, help="L2 weight on the standardised features (default 0.01)")
    p.add_argument("--test-fraction", type=float, default=0.25, metavar="F",
                   help="share of each label's clips held out to report accuracy (default 0.25; 0: none)")
    p.add_argument("--seed", type=int, default=0, help="seed of the held-out split")
    p.set_defaults(func=run)


def _split(labels: list[str], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Stratified (train, test) indices: round(fraction x n) clips of each label held out, at least one stays."""
    import numpy as np

    rng, train, test = np.random.default_rng(seed), [], []
    for label in sorted(set(labels)):
        members = [i for i, lab in enumerate(labels) if lab == label]
        rng.shuffle(members)
        held = min(len(members) - 1, round(fraction * len(members)))
        test += members[:held]
        train += members[held:]
    return sorted(train), sorted(test)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from nodes.capture.files import audio_files
    from nodes.embedding.files import load_audio
    from nodes.sed.scene import clip_embedding, fit
    from nodes.sed.yamnet import load_yamnet
    from stream.errors import StreamError
    from stream.models import use_compile_cache

    if not 0 <= args.test_fraction < 1:
        print(f"error: --test-fraction must be in [0, 1), got {args.test_fraction}", file=sys.stderr)
        return 2
    folders = sorted(p for p in args.data.iterdir() if p.is_dir()) if args.data.is_dir() else []
    if len(folders) < 2:
        print(f"error: {args.data} needs at least two label subfolders of audio clips", file=sys.stderr)
        return 2
    use_compile_cache()
    model = load_yamnet(max_batch=16)
    pooled, labels = [], []
    for folder in folders:
        for path in audio_files([folder]):
            try:
                pooled.append(clip_embedding(model, load_audio(path), args.hop))
                labels.append(folder.name)
            except StreamError as exc:
                print(f"skipped {path}: {exc}", file=sys.stderr)
    counts = {label: labels.count(label) for label in sorted(set(labels))}
    print("clips: " + ", ".join(f"{label} {n}" for label, n in counts.items()))
    if len(counts) < 2 or min(counts.values()) < 1:
        print("error: need clips of at least two labels", file=sys.stderr)
        return 2
    x = np.stack(pooled)
    if args.test_fraction > 0:
        train, test = _split(labels, args.test_fraction, args.seed)
        if test:
            held = fit(x[train], [labels[i] for i in train], args.l2, args.hop)
            predicted = held.predict(x[test])
            accuracy = float(np.mean([p == labels[i] for p, i in zip(predicted, test)]))
            print(f"held-out accuracy {accuracy:.3f} ({len(test)} clips, fitted on {len(train)})")
    classifier = fit(x, labels, args.l2, args.hop)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    classifier.save(args.out)
    print(f"wrote {args.out} ({len(counts)} labels, {len(labels)} clips)")
    return 0
