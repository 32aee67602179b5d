"""Development data for the alert rules: the tune/report split of ../shared/data/sed/dev and seeded mixtures.

    python bench/simulate_sed.py split                 # (re)write bench/sed_split.csv (committed; file names only)
    python bench/simulate_sed.py mix --out DIR         # DIR/{tune,report}/...: mixtures, padded clips, quiet audio

Split: by source recording, per class. A clip's group is its recording (AudioSet video id, the course
recording set `<class>_<size>` of Sharwin24, the darrenbrazas recording id without its `.sN` excerpt suffix, the
one YouTube video behind the three samjbobb First Alert clips, the one dishes recording, one CMU ARCTIC speaker,
one scaper source); within each target class (and among all negatives) the groups, sorted by the SHA-1 of their
name, go alternately to report and tune (report first, so a class with one recording is scored, not tuned on).

Mixtures (`mix`): per half, 20 one-minute mixtures. Each has a background bed (that half's negative clips, each
at -35 dBFS, end to end with 50 ms fades; every other mixture also LibriSpeech speech at -35 dBFS in half its
seconds) and 5 alert clips of that half (13 alert rules: no speech/music targets) at SNR 0, 10 or 20 dB (by
mixture) over the bed, at random times at least 2 s apart (the SNR over the clip's frames within 20 dB of its loudest).

References (sed_eval's format: `onset offset rule`, tab-separated): a clip's event spans its first to last 10 ms
frame within 20 dB of the loudest frame *inside the stretch where the labelled sound is*. Most clips carry weak
labels (an AudioSet 10 s segment says only that the sound is somewhere in it, among speech and other sounds), so
that stretch comes from YAMNet (yamnet.tflite, bench/sed_scores.py) on the clip alone: the patches (0.96 s, every
0.16 s) where the rule's class group (configs/alerts.toml `classes`) scores at least half its best in the clip,
from the first one's start to the last one's end. Clips where the group never reaches 0.1 (ringtones that YAMNet
hears as music) keep the whole clip. Until 2026-12-04 the stretch was the whole clip, which put a baby crying
from 7 s on a 10 s segment at 0.1 s. Also per half:
every clip alone, with 1 s of silence either side (`clips/`, detection per clip and false alarms on negatives);
the half's LibriSpeech utterances alone (`speech/`, negatives for `bench/sed_calibrate.py`); and once: 10 minutes each of digital silence, pink noise at -30 dBFS and speech-free room tone (brown noise at
-55 dBFS with 50 Hz mains hum), in `quiet/`; and, for calibration only (never scored), real negatives from outside the
dev set in `extra/`: the music excerpts of ../shared/data/music, the AMI meeting excerpts and pyAudioAnalysis
recordings of ../shared/data/diarization (meetings: negatives for every alert rule but laughter and cough) and the
ESC-50 thunderstorms, resampled to 16 kHz mono.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import re
from pathlib import Path

import numpy as np
import soundfile as sf

from stream.paths import REPO_ROOT, data_dir, model_dir

RATE = 16000
SPLIT = REPO_ROOT / "bench" / "sed_split.csv"
NON_ALERTS = ("speech", "music")  # detected, but not alerts: not inserted into mixtures
MIXTURES, MIX_S, EVENTS_PER_MIX = 20, 60.0, 5
SNRS_DB = (0.0, 10.0, 20.0)
BED_DBFS = -35.0
QUIET_S = 600.0


def dev_dir() -> Path:
    return data_dir() / "sed" / "dev"


def group_of(row: dict[str, str]) -> str:
    """The source recording a clip was cut from (see the module docstring)."""
    repo, _, path = row["source"].partition(":")
    name = Path(path).stem
    if repo.startswith("dlzou/smh"):
        return "audioset:" + re.sub(r"_\d+\.\d+$", "", name)
    if repo.startswith("Sharwin24") and "/21524/" in path:
        return "sharwin:" + re.sub(r"_\d+$", "", name)
    if repo.startswith("darrenbrazas"):
        return "darren:" + name.split(".")[1]
    if repo.startswith("samjbobb") and name.startswith("first_alert"):
        return "samjbobb:bdVE3dvvBT0"
    if repo.startswith("LCAV") and "cmu_arctic" in name:
        return "cmu_arctic:" + name.split("_")[3]
    if repo.startswith("justinsalamon/scaper"):
        return "scaper:" + re.sub(r"(-\d)?(_edit)?(-2)?$", "", name.split("Voice-")[-1])
    return f"{repo.split('@')[0]}:{path}"


def _stratum(row: dict[str, str]) -> str:
    """Targets alternate within their class, negatives all together (most negative classes have one clip)."""
    return row["class"] if row["role"] == "target" else "negative"


def split() -> list[dict[str, str]]:
    rows = list(csv.DictReader(open(dev_dir() / "clips.csv")))
    groups: dict[str, list[str]] = {}
    for row in rows:
        stratum = groups.setdefault(_stratum(row), [])
        if group_of(row) not in stratum:
            stratum.append(group_of(row))
    half = {}
    for stratum, names in groups.items():
        for i, g in enumerate(sorted(names, key=lambda n: hashlib.sha1(n.encode()).hexdigest())):
            half[(stratum, g)] = "report" if i % 2 == 0 else "tune"
    out = [{"file": r["file"], "class": r["class"], "role": r["role"], "group": group_of(r),
            "half": half[(_stratum(r), group_of(r))]} for r in rows]
    with open(SPLIT, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(out[0]))
        w.writeheader()
        w.writerows(out)
    return out


def read_split(half: str) -> list[dict[str, str]]:
    return [r for r in csv.DictReader(open(SPLIT)) if r["half"] == half]


def load(path: Path) -> np.ndarray:
    x, rate = sf.read(str(path), dtype="float32", always_2d=True)
    assert rate == RATE, path
    return x.mean(1)


def active_span(x: np.ndarray, floor_db: float = 20.0) -> tuple[float, float]:
    """(first, last) s of the 10 ms frames within `floor_db` of the clip's loudest frame."""
    n = len(x) // 160
    if n == 0:
        return 0.0, len(x) / RATE
    frames = x[: n * 160].reshape(n, 160).astype(np.float64)
    db = 10 * np.log10((frames ** 2).mean(1) + 1e-12)
    on = np.flatnonzero(db >= db.max() - floor_db)
    return on[0] * 0.01, (on[-1] + 1) * 0.01


def labelled_span(x: np.ndarray, scores: np.ndarray, group: list[int], floor_db: float = 20.0,
                  hop: float = 0.16, pad: float = 1.0) -> tuple[float, float]:
    """(first, last) s of the labelled sound in clip x: `active_span` inside the stretch where YAMNet hears it.

    `scores` [patches, classes] are YAMNet's on x with `pad` s of silence either side (the `clips/` files), patch k
    covering [k * hop - pad, k * hop - pad + 0.96] of x; `group` the rule's class indices.
    """
    g = scores[:, group].max(1) if len(scores) else np.zeros(0)
    if len(g) == 0 or g.max() < 0.1:
        return active_span(x, floor_db)
    on = np.flatnonzero(g >= 0.5 * g.max())
    a = max(0, round((on[0] * hop - pad) * RATE))
    b = min(len(x), round((on[-1] * hop - pad + 0.96) * RATE))
    if b - a < 160:
        return active_span(x, floor_db)
    first, last = active_span(x[a:b], floor_db)
    return a / RATE + first, a / RATE + last


def rule_groups() -> dict[str, list[int]]:
    """Class indices of each shipped rule's group (configs/alerts.toml), by rule name."""
    from nodes.sed.rules import DEFAULT_RULES, load_rules

    with open(model_dir() / "yamnet" / "yamnet_class_map.csv", newline="") as f:
        names = [row["display_name"] for row in csv.DictReader(f)]
    return {r.name: list(r.indices) for r in load_rules(DEFAULT_RULES, names)}


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2)) + 1e-12)


def at_dbfs(x: np.ndarray, dbfs: float) -> np.ndarray:
    return x * (10 ** (dbfs / 20) / rms(x))


def fade(x: np.ndarray, s: float = 0.05) -> np.ndarray:
    n = min(len(x) // 2, round(s * RATE))
    ramp = np.linspace(0, 1, n, dtype=np.float32)
    x = x.copy()
    x[:n] *= ramp
    x[len(x) - n:] *= ramp[::-1]
    return x


def bed(rng: np.random.Generator, negatives: list[np.ndarray], speech: list[np.ndarray] | None) -> np.ndarray:
    total = round(MIX_S * RATE)
    out = np.zeros(total, np.float32)
    at = 0
    while at < total:
        clip = fade(at_dbfs(negatives[rng.integers(len(negatives))], BED_DBFS))[: total - at]
        out[at:at + len(clip)] += clip
        at += len(clip)
    if speech:
        at = 0
        while at < total:
            clip = fade(at_dbfs(speech[rng.integers(len(speech))], BED_DBFS))[: total - at]
            if rng.random() < 0.5:
                out[at:at + len(clip)] += clip
            at += len(clip)
    return out


Target = tuple[str, np.ndarray, tuple[float, float]]  # rule, clip, its reference span (s of the clip)


def mixture(rng: np.random.Generator, background: np.ndarray, targets: list[Target],
            snr_db: float) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """Background plus EVENTS_PER_MIX target clips at `snr_db` over it, at least 2 s apart; the references."""
    out = background.copy()
    picks = [targets[i] for i in rng.choice(len(targets), EVENTS_PER_MIX, replace=False)]
    slot = MIX_S / EVENTS_PER_MIX
    refs = []
    for i, (rule, clip, (ref_a, ref_b)) in enumerate(picks):
        clip = clip[: round((slot - 2.0) * RATE)]
        start = i * slot + 1.0 + rng.random() * (slot - 2.0 - len(clip) / RATE)
        a, b = active_span(clip)
        first = round(start * RATE)
        span = slice(first + round(a * RATE), first + round(b * RATE))
        gain = rms(out[span]) * 10 ** (snr_db / 20) / rms(clip[round(a * RATE):round(b * RATE)])
        out[first:first + len(clip)] += gain * clip
        ref_b = min(ref_b, len(clip) / RATE)
        ref_a = min(ref_a, ref_b)
        refs.append((round(start + ref_a, 3), round(start + ref_b, 3), rule))
    peak = np.abs(out).max()
    return (out / peak * 0.9 if peak > 0.9 else out).astype(np.float32), refs


def pink(rng: np.random.Generator, n: int) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / RATE)
    spectrum[1:] /= np.sqrt(f[1:])
    spectrum[0] = 0
    return np.fft.irfft(spectrum, n).astype(np.float32)


def quiet(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    n = round(QUIET_S * RATE)
    sf.write(out / "silence.wav", np.zeros(n, np.float32), RATE, subtype="PCM_16")
    sf.write(out / "pink_noise.wav", at_dbfs(pink(rng, n), -30.0), RATE, subtype="PCM_16")
    brown = np.cumsum(rng.standard_normal(n)).astype(np.float64)
    brown -= np.convolve(brown, np.ones(1601) / 1601, mode="same")  # no drift: high-pass at ~10 Hz
    t = np.arange(n) / RATE
    hum = sum(np.sin(2 * np.pi * 50 * h * t) / h for h in (1, 2, 3))
    tone = at_dbfs(brown, -55.0) + at_dbfs(hum, -62.0)
    sf.write(out / "room_tone.wav", tone.astype(np.float32), RATE, subtype="PCM_16")


EXTRA = {"music": "music/audio/*", "meeting": "diarization/ami/*.flac", "pyaa": "diarization/pyaa/*.wav",
         "esc50": "sed/esc50/*-19.wav"}  # kind -> files under ../shared/data (ESC-50 class 19: thunderstorm)


def extra(out: Path) -> None:
    from nodes.capture.files import read_blocks

    for kind, pattern in EXTRA.items():
        (out / kind).mkdir(parents=True, exist_ok=True)
        for path in sorted(data_dir().glob(pattern)):
            x = np.concatenate(list(read_blocks(path, RATE)))
            sf.write(out / kind / f"{path.stem}.wav", x, RATE, subtype="PCM_16")


def write_refs(path: Path, refs: list[tuple[float, float, str]]) -> None:
    path.write_text("".join(f"{a:.3f}\t{b:.3f}\t{r}\n" for a, b, r in refs))


def simulate(out: Path) -> None:
    from sed_scores import scores

    groups = rule_groups()
    speech_files = sorted((data_dir() / "speakers" / "librispeech" / "librispeech_train-clean-100").glob("*.flac"))
    for h, half in enumerate(("tune", "report")):
        rows = read_split(half)
        rng = np.random.default_rng(1000 + h)
        clips = {r["file"]: load(dev_dir() / r["file"]) for r in rows}
        clip_dir = out / half / "clips"
        clip_files = {}
        for r in rows:
            target = clip_dir / r["role"] / f"{r['class']}__{Path(r['file']).stem}.wav"
            target.parent.mkdir(parents=True, exist_ok=True)
            pad = np.zeros(RATE, np.float32)
            x = clips[r["file"]]
            sf.write(target, np.concatenate([pad, x, pad]), RATE, subtype="PCM_16")
            write_refs(target.with_suffix(".txt"), [(1.0, 1.0 + len(x) / RATE, r["class"])]
                       if r["role"] == "target" else [])
            clip_files[r["file"]] = target
        negatives = [clips[r["file"]] for r in rows if r["role"] == "negative"]
        targets = [(r["class"], clips[r["file"]],
                    labelled_span(clips[r["file"]], scores(clip_files[r["file"]], 16)[0], groups[r["class"]]))
                   for r in rows if r["role"] == "target" and r["class"] not in NON_ALERTS]
        speakers = speech_files[h::2][:60]
        speech = [load(p) for p in speakers]
        mix_dir = out / half / "mixtures"
        mix_dir.mkdir(parents=True, exist_ok=True)
        for m in range(MIXTURES):
            background = bed(rng, negatives, speech if m % 2 else None)
            audio, refs = mixture(rng, background, targets, SNRS_DB[m % len(SNRS_DB)])
            name = f"mix{m:02d}_snr{int(SNRS_DB[m % len(SNRS_DB)]):02d}"
            sf.write(mix_dir / f"{name}.wav", audio, RATE, subtype="PCM_16")
            write_refs(mix_dir / f"{name}.txt", refs)
        (out / half / "speech").mkdir(parents=True, exist_ok=True)
        for path in speech_files[h::2]:  # negatives for calibrating the alert rules (tune), 126 utterances
            sf.write(out / half / "speech" / f"{path.stem}.wav", load(path), RATE, subtype="PCM_16")
    quiet(out / "quiet")
    extra(out / "extra")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("split", "mix"))
    p.add_argument("--out", type=Path, default=Path("/tmp/sed-sim"))
    args = p.parse_args()
    if args.what == "split":
        rows = split()
        for half in ("tune", "report"):
            picked = [r for r in rows if r["half"] == half]
            print(half, len(picked), "clips,", len({r["group"] for r in picked}), "recordings")
    else:
        simulate(args.out)


if __name__ == "__main__":
    main()
