"""Sound-event alerts on the REPORT half: our decoding vs Frigate-style decoding of the same YAMNet, one run.

    python bench/simulate_sed.py mix --out /tmp/sed-sim
    python bench/sed_cache.py /tmp/sed-sim/report/clips /tmp/sed-sim/report/mixtures /tmp/sed-sim/quiet  # YAMNet, once
    python bench/sed_alerts.py --sim /tmp/sed-sim

- ours: `stream detect`'s code (`nodes.sed.files.detect_file`: the node's `Detector` at the node's hop,
  configs/alerts.toml) with the network's outputs replayed from bench/sed_cache.py (the node's JAX YAMNet on the
  same patches), so its events are the ones `stream detect` writes and the live node publishes;
- Frigate-style: yamnet.tflite as Frigate runs it (bench/sed_scores.py), one patch every 0.96 s (Frigate: 0.975 s),
  an alert while any class of the rule's group scores >= 0.8 (one event per run of such windows, onset = first
  window's start).
Figures: alert clips detected per rule (report clips, each with 1 s of silence either side), false alarms per
hour on the report negatives (alert rules only; speech/music clips count as negatives for the alert rules),
starts on 10 minutes each of silence / pink noise / room tone, event F1 (onset +-0.5 s) and segment F1 (1 s)
of the 13 alert rules over the 20 report mixtures (sed_eval's definitions, nodes/sed/evaluate.py), median reference onset -> decision latency.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from sed_cache import Replay  # noqa: E402
from sed_calibrate import NON_ALERTS, read_refs  # noqa: E402
from sed_scores import scores  # noqa: E402

from nodes.sed.evaluate import score  # noqa: E402
from nodes.sed.files import detect_file  # noqa: E402
from nodes.sed.rules import DEFAULT_RULES, load_rules  # noqa: E402
from nodes.sed.detector import DEFAULT_HOP  # noqa: E402
from nodes.sed.yamnet import read_class_names  # noqa: E402
from stream.paths import model_dir  # noqa: E402

CLASS_NAMES = read_class_names(model_dir() / "yamnet" / "yamnet_class_map.csv")

FRIGATE_HOP_FRAMES, FRIGATE_EVERY = 16, 6  # patches of 0.16 s: 6 x 0.16 s = 0.96 s between Frigate-style windows
FRIGATE_THRESHOLD = 0.8


def ours(rules, wav: Path) -> list[tuple[float, float, str, float]]:
    """(onset, offset, rule, published) of every event `stream detect` / the node emits (audio seconds)."""
    result = detect_file(wav, Replay(wav, DEFAULT_HOP, CLASS_NAMES), rules, DEFAULT_HOP, tags_every=0.0)
    published = {(e["rule"], e["t_audio"]): e["t_publish"] for e in result.events if e["type"] == "sound.start"}
    return [(e["start"], e["t_audio"], e["rule"], published[(e["rule"], e["start"])])
            for e in result.events if e["type"] == "sound.stop"]


def frigate(rules, wav: Path) -> list[tuple[float, float, str, float]]:
    s, _ = scores(wav, FRIGATE_HOP_FRAMES)
    s = s[::FRIGATE_EVERY]
    step = FRIGATE_HOP_FRAMES / 100 * FRIGATE_EVERY
    out = []
    for rule in rules:
        on = s[:, list(rule.indices)].max(1) >= FRIGATE_THRESHOLD if len(s) else np.zeros(0, bool)
        k = 0
        while k < len(on):
            if on[k]:
                j = k
                while j + 1 < len(on) and on[j + 1]:
                    j += 1
                out.append((k * step, j * step + 0.96, rule.name, k * step + 0.96))
                k = j + 1
            else:
                k += 1
    return out


def run(system, rules, sim: Path, half: str) -> dict:
    alert_rules = [r.name for r in rules if r.name not in NON_ALERTS]
    out: dict = {"detected": {}, "fa": 0, "neg_s": 0.0, "quiet": {}}
    for wav in sorted((sim / half / "clips").rglob("*.wav")):
        cls = wav.stem.split("__")[0]
        events = system(rules, wav)
        if wav.parent.name == "target":
            out["detected"].setdefault(cls, []).append(any(r == cls for _, _, r, _ in events))
        n = sum(r in alert_rules and r != cls for _, _, r, _ in events)
        if wav.parent.name == "negative" or cls in NON_ALERTS:
            out["fa"] += n
            out["neg_s"] += float(read_refs_duration(wav))
    for wav in sorted((sim / "quiet").glob("*.wav")):
        out["quiet"][wav.stem] = str(sum(r in alert_rules for _, _, r, _ in system(rules, wav)))
    refs, ests, latency = {}, {}, []
    for wav in sorted((sim / half / "mixtures").glob("*.wav")):
        refs[wav.stem] = read_refs(wav.with_suffix(".txt"))
        events = [e for e in system(rules, wav) if e[2] in alert_rules]
        ests[wav.stem] = [(a, b, r) for a, b, r, _ in events]
        for a, _, r in refs[wav.stem]:
            near = [d - a for on, _, rr, d in events if rr == r and abs(on - a) <= 0.5]
            if near:
                latency.append(min(near))
    report = score(refs, ests, alert_rules, {})
    out["event_f1"], out["segment_f1"] = report.event_f1, report.segment_f1
    out["latency"] = statistics.median(latency) if latency else float("nan")
    return out


def read_refs_duration(wav: Path) -> float:
    import soundfile as sf

    return sf.info(str(wav)).duration - 2.0  # the clip without its 1 s of padding either side


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sim", type=Path, default=Path("/tmp/sed-sim"))
    p.add_argument("--half", choices=("report", "tune"), default="report", help="report (the figures) or tune")
    p.add_argument("--rules", type=Path, default=DEFAULT_RULES, help="ours: this rules file (default: the shipped one)")
    args = p.parse_args()
    rules = load_rules(args.rules, CLASS_NAMES)
    results = {"ours": run(ours, rules, args.sim, args.half), "Frigate-style": run(frigate, rules, args.sim, args.half)}
    print("| rule | clips | ours | Frigate-style |\n|---|---|---|---|")
    for rule in [r.name for r in rules]:
        hits = {k: v["detected"].get(rule, []) for k, v in results.items()}
        if hits["ours"]:
            print(f"| {rule} | {len(hits['ours'])} | " + " | ".join(f"{sum(h)}/{len(h)}" for h in hits.values()) + " |")
    print("\n| figure | ours | Frigate-style |\n|---|---|---|")

    def row(name, fn):
        print(f"| {name} | " + " | ".join(fn(v) for v in results.values()) + " |")

    def alerts(v):
        hits = [h for rule, hs in v["detected"].items() if rule not in NON_ALERTS for h in hs]
        return f"{100 * sum(hits) / len(hits):.0f} % ({sum(hits)}/{len(hits)})"

    row("alert clips detected (13 alert rules)", alerts)
    row("false alarms per hour on negatives", lambda v: f"{3600 * v['fa'] / v['neg_s']:.1f} ({v['fa']} in "
        f"{v['neg_s'] / 60:.1f} min)")
    row("starts on silence / pink noise / room tone (10 min each)",
        lambda v: " / ".join(str(v["quiet"][k]) for k in ("silence", "pink_noise", "room_tone")))
    row("event F1, onset +-0.5 s (20 mixtures)", lambda v: f"{v['event_f1']:.3f}")
    row("segment F1, 1 s", lambda v: f"{v['segment_f1']:.3f}")
    row("median onset -> decision latency, s", lambda v: f"{v['latency']:.2f}")


if __name__ == "__main__":
    main()
