#!/usr/bin/env python3
"""Fine-tune BeatNet's CRNN on the TUNE half of the music development set (bench/music_render.py); the weights
the `crnn-tuned` beats mode ships (nodes/beats/beatnet_tuned.npz). The report half is never read.

Data, all from the tune half: a held-out slice (every 4th track per category, in the set's hash order) for early
stopping on beat F-measure through the live decoder; the rest as training tracks: each corpus piece re-rendered
`--rerenders` more times with new seeds (new tempo curve, rubato, instrumentation: a piano and an ensemble version),
and every training audio (renders, re-renders, the tune half's real recordings) as is plus `--copies` augmented
copies (tempo x0.8-1.25 by resampling, gain, EQ tilt, room, noise). Features are cached in WORK/features-*.npz,
checkpoints in WORK/train.npz (a run resumes from it: same data, same batches), the best held-out weights in
WORK/train.best.npz and, at the end, --out.

    nice python bench/music_render.py --out SET
    nice python bench/train_beats.py --set SET --work WORK --out nodes/beats/beatnet_tuned.npz
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from music_render import Track, corpus_pieces, load_tracks, render_corpus  # noqa: E402

from nodes.beats.beatnet import clip_features  # noqa: E402
from nodes.beats.files import read_beats  # noqa: E402
from nodes.beats.onset import RATE  # noqa: E402
from nodes.beats.tracker import OFFSETS  # noqa: E402
from nodes.beats.train import Example, TrainConfig, make_example, train  # noqa: E402
from nodes.capture.files import read_blocks  # noqa: E402

STRETCH = (0.8, 1.25)  # tempo factors of the augmented copies (log-uniform)


def read_audio(path: str) -> np.ndarray:
    return np.concatenate(list(read_blocks(Path(path), RATE)))


def held_out(tracks: list[Track]) -> set[str]:
    """Every 4th track of each category, in tracks.csv order (fixed by the seeded render)."""
    seen: dict[str, int] = {}
    out = set()
    for t in tracks:
        seen[t.category] = seen.get(t.category, 0) + 1
        if seen[t.category] % 4 == 0:
            out.add(t.id)
    return out


def rerenders(tracks: list[Track], count: int, work: Path) -> list[Track]:
    """Each training corpus piece rendered `count` more times (seed offsets 1000 * k; piano on odd k)."""
    pieces = {f"{p.parent.name}/{p.name}": p for p in corpus_pieces()}
    out_dir = work / "rerenders"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for t in tracks:
        if not t.id.startswith("corpus-"):
            continue
        path = pieces[t.source.removeprefix("music21 corpus ")]
        seed = int(t.id.rsplit("-", 1)[1])
        for k in range(1, count + 1):
            new_id = f"corpus-{path.stem.replace('.', '_')}-{seed + 1000 * k}"
            if (out_dir / f"{new_id}.beats").is_file():
                out.append(Track(new_id, "rendered", str(out_dir / f"{new_id}.flac"), str(out_dir / f"{new_id}.beats"),
                                 "", 0.0))
                continue
            r = render_corpus(path, seed + 1000 * k, out_dir, piano=k % 2 == 1)
            out.append(replace(r, audio=str(out_dir / r.audio), beats=str(out_dir / r.beats)))
            print(f"re-rendered {new_id} ({r.category})", file=sys.stderr)
    return out


def build_examples(tracks: list[Track], copies: int, widen: float, seed: int) -> list[Example]:
    examples = []
    for i, t in enumerate(tracks):
        x = read_audio(t.audio)
        times, positions = read_beats(Path(t.beats))
        examples.append(make_example(x, times, positions, widen))
        rng = np.random.default_rng([seed, i])
        for _ in range(copies):
            stretch = float(np.exp(rng.uniform(*np.log(STRETCH))))
            examples.append(make_example(x, times, positions, widen, rng, stretch))
        print(f"features {i + 1}/{len(tracks)}: {t.id}", file=sys.stderr)
    return examples


def cached_examples(path: Path, make) -> list[Example]:
    if path.is_file():
        with np.load(path) as d:
            n = int(d["count"])
            return [Example(d[f"f{i}"], d[f"b{i}"], d[f"d{i}"], bool(d[f"k{i}"])) for i in range(n)]
    examples = make()
    arrays = {}
    for i, e in enumerate(examples):
        arrays.update({f"f{i}": e.features, f"b{i}": e.beat, f"d{i}": e.downbeat, f"k{i}": np.array(e.bars_known)})
    np.savez(path, count=np.array(len(examples)), **arrays)
    return examples


def main() -> int:
    d = TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", type=Path, required=True, help="folder of bench/music_render.py (tracks.csv)")
    parser.add_argument("--work", type=Path, required=True, help="folder for re-renders, features, checkpoints")
    parser.add_argument("--out", type=Path, required=True, help="the best weights (.npz, flat names)")
    parser.add_argument("--rerenders", type=int, default=4, help="extra renders per training corpus piece")
    parser.add_argument("--copies", type=int, default=3, help="augmented copies per training audio")
    parser.add_argument("--init", default="beatnet-1", help="weights to start from (a registered model)")
    for name in ("steps", "batch", "crop_frames", "lr", "beat_weight", "eval_every", "patience", "seed"):
        kind = type(getattr(d, name))
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=getattr(d, name))
    args = parser.parse_args()
    config = TrainConfig(**{k: getattr(args, k) for k in ("steps", "batch", "crop_frames", "lr", "beat_weight",
                                                          "eval_every", "patience", "seed")})
    args.work.mkdir(parents=True, exist_ok=True)
    tune = load_tracks(args.set, "tune")
    hold = held_out(tune)
    training = [t for t in tune if t.id not in hold]
    print(f"tune half: {len(tune)} tracks, {len(hold)} held out: {sorted(hold)}", file=sys.stderr)
    started = time.perf_counter()
    cache = args.work / f"features-r{args.rerenders}-c{args.copies}-s{config.seed}.npz"
    examples = cached_examples(cache, lambda: build_examples(
        training + rerenders(training, args.rerenders, args.work), args.copies, config.widen, config.seed))
    validation = [(clip_features(read_audio(t.audio)), read_beats(Path(t.beats))[0]) for t in tune if t.id in hold]
    frames = sum(len(e.beat) for e in examples)
    print(f"{len(examples)} training items, {frames / 50 / 3600:.2f} h; {len(validation)} held out; data "
          f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
    from stream.models import flatten, load_params

    best, meta = train(load_params(args.init), examples, validation, config, args.work / "train.npz",
                       OFFSETS["crnn"], log=lambda s: print(s, file=sys.stderr, flush=True))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **{k: v.astype(np.float32) for k, v in flatten(best).items()})
    print(f"wrote {args.out}: best held-out F {meta['best_f']:.3f} at step {meta['best_step']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
