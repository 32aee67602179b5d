"""Custom sounds: teach "my doorbell" (a generated two-tone chime, a sound no shipped rule was tuned on) from 5
examples with `stream teach`'s code, then detect it in mixtures with `stream detect`'s code (JAX YAMNet).

    python bench/simulate_sed.py mix --out /tmp/sed-sim      # the dev split's beds and negatives
    python bench/sed_custom.py --sim /tmp/sed-sim --out /tmp/sed-custom

Examples: 5 chimes of one doorbell (E5 then C5, bell partials, a room's reverberation), each recorded at another
level with room noise. Negatives for the threshold: the TUNE half's negative clips (--negatives), and the shipped
background bank (nodes/sed/background.npz; --no-bank leaves it out). Test: 10
one-minute mixtures over REPORT-half beds (negatives, LibriSpeech speech in every other one) with 4 new chimes of
the same doorbell each at 0/10/20 dB (by mixture; pitch +-0.5 %, level, reverberation vary) and 2 report-half alert
clips as distractors; false alarms on the report negative clips (and with --quiet the 10-minute quiet files);
with --half tune also on the real negatives from outside the dev set (extra/: music, pyAudioAnalysis, ESC-50
thunderstorms; not the AMI meetings, which are in the bank) and the tune LibriSpeech utterances. Prints event F1
(sed_eval, onset +-0.5 s), segment F1 and false alarms per hour. The prototypes, derived from generated audio
and tune clips, stay in --out (never committed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent))
import simulate_sed as sim  # noqa: E402

RATE = 16000
NAME = "my_doorbell"


def chime(rng: np.random.Generator) -> np.ndarray:
    """One press of the doorbell: ding (E5) then dong (C5), with bell partials and a small room's reverberation."""
    detune = 1 + rng.uniform(-0.005, 0.005)
    t = np.arange(round(2.2 * RATE)) / RATE
    out = np.zeros_like(t)
    for f0, at, decay in ((659.26, 0.0, 0.9), (523.25, 0.55, 1.3)):
        tt = np.clip(t - at, 0, None)
        env = np.where(t >= at, np.exp(-tt / decay) * (1 - np.exp(-tt / 0.004)), 0.0)
        for ratio, amp in ((1.0, 1.0), (2.0, 0.35), (2.76, 0.2), (4.1, 0.08)):
            out += amp * env * np.sin(2 * np.pi * f0 * detune * ratio * tt)
    ir = rng.standard_normal(round(0.3 * RATE)) * np.exp(-np.arange(round(0.3 * RATE)) / (0.06 * RATE))
    ir[0] = 8.0
    wet = np.convolve(out, ir)[: len(out)]
    return (wet / np.abs(wet).max() * 0.5).astype(np.float32)


def room(rng: np.random.Generator, n: int, dbfs: float) -> np.ndarray:
    return sim.at_dbfs(sim.pink(rng, n), dbfs)


def make(out: Path, data: Path, half: str = "report") -> tuple[list[Path], list[Path]]:
    rng = np.random.default_rng(2024)
    (out / "examples").mkdir(parents=True, exist_ok=True)
    examples = []
    for i in range(5):
        x = chime(rng) * 10 ** (rng.uniform(-12, 0) / 20)
        pad = np.zeros(round(0.5 * RATE), np.float32)
        x = np.concatenate([pad, x, pad])
        x = x + room(rng, len(x), -55.0)
        path = out / "examples" / f"example{i}.wav"
        sf.write(path, x, RATE, subtype="PCM_16")
        examples.append(path)
    rows = sim.read_split(half)
    clips = {r["file"]: sim.load(sim.dev_dir() / r["file"]) for r in rows}
    negatives = [clips[r["file"]] for r in rows if r["role"] == "negative"]
    targets = [(r["class"], clips[r["file"]]) for r in rows
               if r["role"] == "target" and r["class"] not in sim.NON_ALERTS]
    speech_files = sorted((data / "speakers" / "librispeech" / "librispeech_train-clean-100").glob("*.flac"))
    speech_files = speech_files[("tune", "report").index(half)::2][:60]
    speech = [sim.load(p) for p in speech_files]
    (out / "mixtures").mkdir(parents=True, exist_ok=True)
    mixtures = []
    for m in range(10):
        background = sim.bed(rng, negatives, speech if m % 2 else None)
        snr = sim.SNRS_DB[m % 3]
        refs = []
        slot = sim.MIX_S / 6
        order = rng.permutation(6)  # 4 chimes and 2 distractors in random slots
        for i, kind in enumerate(order):
            x = chime(rng) if kind < 4 else targets[rng.integers(len(targets))][1][: round((slot - 1.5) * RATE)]
            start = i * slot + 0.5 + rng.random() * (slot - 1.0 - len(x) / RATE)
            first = round(start * RATE)
            a, b = sim.active_span(x)
            if kind < 4:
                refs.append((round(start + a, 3), round(start + b, 3), NAME))
            span = slice(first + round(a * RATE), first + round(b * RATE))
            gain = sim.rms(background[span]) * 10 ** (snr / 20) / sim.rms(x[round(a * RATE):round(b * RATE)])
            background[first:first + len(x)] += gain * x
        peak = np.abs(background).max()
        audio = (background / peak * 0.9 if peak > 0.9 else background).astype(np.float32)
        path = out / "mixtures" / f"chime{m:02d}_snr{int(snr):02d}.wav"
        sf.write(path, audio, RATE, subtype="PCM_16")
        sim.write_refs(path.with_suffix(".txt"), sorted(refs))
        mixtures.append(path)
    return examples, mixtures


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sim", type=Path, default=Path("/tmp/sed-sim"))
    p.add_argument("--out", type=Path, default=Path("/tmp/sed-custom"))
    p.add_argument("--quiet", action="store_true", help="also count false alarms on the 30 min of quiet files")
    p.add_argument("--no-bank", action="store_true", help="teach without the shipped background bank (ablation)")
    p.add_argument("--half", choices=("tune", "report"), default="report",
                   help="tune: for development, mixtures over tune beds, taught with the tune negatives of half "
                   "the source recordings, false alarms counted on the other half")
    args = p.parse_args()

    from nodes.sed.evaluate import read_events, score
    from nodes.sed.files import detect_file
    from nodes.sed.rules import load_rules
    from nodes.sed.teach import teach, write_rule
    from stream.commands.detect import load
    from stream.paths import data_dir

    examples, mixtures = make(args.out, data_dir(), args.half)
    model, _ = load(None)
    rules_file = args.out / "taught.toml"
    rules_file.unlink(missing_ok=True)
    negatives = sorted((args.sim / "tune" / "clips" / "negative").glob("*.wav"))
    negative_files = sorted((args.sim / "report" / "clips" / "negative").glob("*.wav"))
    if args.half == "tune":  # alternate source recordings (excerpts of one recording stay on one side)
        groups = sorted({r["group"] for r in sim.read_split("tune") if r["role"] == "negative"})
        group = {f"{r['class']}__{Path(r['file']).stem}": r["group"] for r in sim.read_split("tune")}
        negative_files = [p for p in negatives if groups.index(group[p.stem]) % 2]
        negatives = [p for p in negatives if not groups.index(group[p.stem]) % 2]
        negative_files += [p for kind in ("music", "pyaa", "esc50")
                           for p in sorted((args.sim / "extra" / kind).glob("*.wav"))]
        negative_files += sorted((args.sim / "tune" / "speech").glob("*.wav"))
    taught = teach(model, examples, negatives, [] if args.no_bank else None)
    write_rule(rules_file, NAME, taught)
    print(f"taught {NAME}: {len(taught.prototypes)} example / {len(taught.counter)} counter-example embeddings, "
          f"threshold {taught.threshold:.3f}, examples' leave-one-out low quartile "
          f"{np.quantile(taught.positives, 0.25):.3f}, tune negatives (each without its own counter-examples) at most "
          f"{taught.negative_max.max():.3f}")
    rules = load_rules(rules_file, model.class_names)
    if args.quiet:
        negative_files += sorted((args.sim / "quiet").glob("*.wav"))
    references, hypotheses, durations, starts = {}, {}, {}, {}
    for path in mixtures + negative_files:
        result = detect_file(path, model, rules, tags_every=0)
        references[path.stem] = read_events(path.with_suffix(".txt")) if path.with_suffix(".txt").exists() else []
        hypotheses[path.stem] = result.alerts()
        durations[path.stem] = result.duration
        starts[path.stem] = [(e["t_audio"], e["t_publish"], e["rule"]) for e in result.events
                             if e["type"] == "sound.start"]
    report = score(references, hypotheses, [NAME], durations, starts)
    quiet = {p.stem: len(hypotheses[p.stem]) for p in negative_files if p.parent.name == "quiet"}
    by_folder: dict[str, list[float]] = {}
    for p in negative_files:
        n, s = by_folder.setdefault(p.parent.name, [0, 0.0])
        by_folder[p.parent.name] = [n + len(hypotheses[p.stem]), s + durations[p.stem] / 60]
    print("false alarms per negative folder:", ", ".join(f"{k} {n} in {s:.1f} min" for k, (n, s) in by_folder.items()))
    print(f"event F1 (onset +-0.5 s) {report.event_f1:.3f}, segment F1 {report.segment_f1:.3f}, "
          f"{sum(len(references[p.stem]) for p in mixtures)} chimes in {len(mixtures)} mixtures; false alarms: "
          f"{report.false_alarms} in {report.negative_s / 60:.1f} min of negatives = "
          f"{report.false_alarms_per_hour:.1f} per hour (quiet files: {quiet or 'not run'}); median latency "
          f"{report.latency_s if report.latency_s is None else round(report.latency_s, 2)} s")


if __name__ == "__main__":
    main()
