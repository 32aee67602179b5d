"""CAM++ verification and identification on the shared LibriSpeech set: raw cosine vs s-norm, and the
enrol / calibrate / identify protocol of `stream enroll|verify|identify` on full-length utterances.

    stream embed $STREAM_DATA_DIR/speakers/librispeech --out /tmp/campplus.npz     # or let this script embed
    python bench/speaker_verification.py --embeddings /tmp/campplus.npz

Roles (speakers disjoint): test-other (10 speakers x 10 utterances) are the targets; the 251 train-clean-100
speakers (one utterance each) are split by sorted path into thirds: s-norm cohort, calibration trials (all pairs
are impostor pairs; threshold at --far), impostors to reject. EER rows use every pair of test-other utterances
(450 target / 4500 impostor trials); s-norm there uses the whole train-clean-100 set as cohort.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from nodes.speakers.calibration import calibrate, threshold_at_eer
from nodes.speakers.decide import identify
from nodes.speakers.scoring import score
from nodes.speakers.store import SpeakerStore
from stream.paths import data_dir


def embeddings(paths: list[Path], given: Path | None) -> np.ndarray:
    if given is None:
        from nodes.speakers.embeddings import embed_paths

        return embed_paths("campplus", paths)
    with np.load(given) as data:
        table = {str(Path(p).resolve()): e for p, e in zip(data["paths"], data["embeddings"])}
    return np.stack([table[str(p.resolve())] for p in paths])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embeddings", type=Path, help="`stream embed` output for the 351 utterances")
    parser.add_argument("--far", type=float, default=0.01, help="calibration target FAR (0.01)")
    parser.add_argument("--enrol", type=int, default=3, help="enrolment utterances per test-other speaker (3)")
    args = parser.parse_args()

    root = data_dir() / "speakers"
    with open(root / "index.csv", newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: r["path"])
    emb = embeddings([root / r["path"] for r in rows], args.embeddings)
    test = np.array([r["subset"] == "librispeech_test-other" for r in rows])
    speakers = np.array([r["speaker_id"] for r in rows])
    others = np.flatnonzero(~test)

    print("| scoring (test-other, all pairs) | EER % |")
    print("|---|---|")
    t = np.flatnonzero(test)
    i, j = np.triu_indices(len(t), k=1)
    same = speakers[t][i] == speakers[t][j]
    for name, cohort in [("cosine", None), ("s-norm, cohort 251 train-clean-100", emb[others])]:
        s = score(emb[t], emb[t], cohort)[i, j]
        print(f"| {name} | {100 * threshold_at_eer(s[same], s[~same])[1]:.2f} |")

    cohort, calib, impostors = np.array_split(others, 3)
    store = SpeakerStore(Path("in-memory"), "campplus", emb.shape[1])
    store.set_cohort(emb[cohort], [rows[k]["path"] for k in cohort])
    a, b = np.triu_indices(len(calib), k=1)
    calib_scores = score(emb[calib], emb[calib], store.cohort)[a, b]
    store.set_threshold(calibrate(calib_scores, np.zeros(len(a), bool), args.far, True, "train-clean-100 pairs"))
    held_out = []
    for speaker in sorted(set(speakers[test])):
        own = np.flatnonzero(test & (speakers == speaker))
        store.enrol(f"spk{speaker}", emb[own[: args.enrol]], [rows[k]["path"] for k in own[: args.enrol]])
        held_out += list(own[args.enrol :])
    named = [d.name for d in identify(store, emb[held_out])]
    correct = np.mean([n == f"spk{speakers[k]}" for n, k in zip(named, held_out)])
    rejected = np.mean([d.name == "unknown" for d in identify(store, emb[impostors])])
    print(f"\ncohort {len(cohort)}, calibration {len(calib)} speakers ({len(a)} impostor pairs, threshold "
          f"{store.threshold.value:.3f} at FAR {100 * store.threshold.far:.2f} %), {args.enrol} enrolment utterances")
    print(f"identification: {100 * correct:.1f} % of {len(held_out)} held-out test-other utterances named correctly; "
          f"{100 * rejected:.1f} % of {len(impostors)} impostor speakers rejected (unknown)")


if __name__ == "__main__":
    main()
