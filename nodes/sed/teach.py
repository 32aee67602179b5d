"""Custom sounds from a few examples: YAMNet embeddings of the examples against counter-examples of the rest.

`stream teach NAME EXAMPLE... --rules FILE.toml [--negatives DIR]`:
1. every example runs through the same front end and model as the node (patches every 0.16 s); the sound is its
   loudest patches (within `LOUDEST_DB` of its loudest, at most `PER_EXAMPLE`), so a short sound inside a longer
   recording is what gets learned. Their embeddings, and those of the same patches with the example mixed into
   `AUG_BACKGROUNDS` backgrounds (the negatives, generated noise) at `AUG_SNRS_DB`, are the examples of the rule:
   a doorbell heard over a running tap must still look like the doorbell;
2. counter-examples: every patch of the negatives (the user's own background recordings with --negatives) and of
   generated noise (white, pink, brown and mains hum at two levels), at most `MAX_COUNTER`, plus the shipped
   background bank (`BANK`: speech, meetings, rendered music and household near-misses; bench/sed_background.py),
   so that a rule taught without negatives, or with a few minutes of one quiet room, still knows music and speech;
3. a patch's score is its mean similarity to the nearest examples minus that to the nearest counter-example
   (`nodes.sed.decode.taught_score`): a raw similarity threshold cannot separate a quiet chime from a room's
   louder sounds, the margin can;
4. the threshold keeps the rule quiet on negatives it has never heard: each negative file (and each source
   recording of the bank) is scored with the counter-examples of all the *other* ones (leave one out), and the
   threshold sits `THRESHOLD_MARGIN` above the highest of these (see `calibrate`).
The rule is written as `[rules.NAME]` with `prototypes = "NAME.npz"` (keys "embeddings" and "counter") beside the
rules file; the node detects it like any other rule (nodes/sed/decode.py `pool`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nodes.capture.files import read_blocks
from nodes.sed.decode import level, taught_score
from nodes.sed.detector import PATCH_SAMPLES, hop_frames
from nodes.sed.frontend import HOP, SAMPLE_RATE, StreamingLogMel
from nodes.sed.yamnet import PATCH_FRAMES, Yamnet
from stream.errors import AudioError, ConfigError

LOUDEST_DB = 6.0  # dB below an example's loudest patch that still counts as the sound
PER_EXAMPLE = 4  # sound patches per example, at most
TEACH_HOP = 0.16  # s between patches when embedding examples and negatives
AUG_SNRS_DB = (0.0, 10.0)  # each example is also mixed into backgrounds at these levels (sound over background)
AUG_BACKGROUNDS = 8  # backgrounds per example (drawn from the negatives and the generated noise)
MAX_COUNTER = 2048  # counter-example embeddings kept (an even subsample beyond that)
THRESHOLD_MARGIN = 0.05  # above the highest held-out negative file (chosen on tune-half chime mixtures)
MIN_THRESHOLD = 0.05  # the margin score's floor for an alert
BANK = Path(__file__).with_name("background.npz")  # built by bench/sed_background.py (licences there)
COOLDOWN = 2.0  # s: a taught sound is a short one (a chime, a beep), pressed again it is a new alert


def patches(samples: np.ndarray, hop: float = TEACH_HOP) -> tuple[np.ndarray, np.ndarray]:
    """(log-mel patches [n, 96, 64], RMS dBFS [n]) of mono 16 kHz audio; shorter audio is padded to a patch."""
    x = np.asarray(samples, np.float32)
    if len(x) < PATCH_SAMPLES:
        x = np.concatenate([x, np.zeros(PATCH_SAMPLES - len(x), np.float32)])
    frames = StreamingLogMel().push(x)
    starts = range(0, len(frames) - PATCH_FRAMES + 1, hop_frames(hop))
    rms = np.array([level(x[f * HOP:f * HOP + PATCH_SAMPLES]).rms_dbfs for f in starts])
    return np.stack([frames[f:f + PATCH_FRAMES] for f in starts]), rms


def patch_embeddings(model: Yamnet, samples: np.ndarray, hop: float = TEACH_HOP) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings [patches, 1024], RMS dBFS [patches]) of mono 16 kHz audio."""
    p, rms = patches(samples, hop)
    return model(p)[1], rms


def read_audio(path: Path) -> np.ndarray:
    return np.concatenate(list(read_blocks(path, SAMPLE_RATE)))


def loudest(rms: np.ndarray) -> np.ndarray:
    """Indices (in time order) of an example's sound patches: its loudest, within LOUDEST_DB, at most PER_EXAMPLE."""
    if not np.isfinite(rms).any():
        raise AudioError("the example is digital silence")
    loud = np.flatnonzero(rms >= np.nanmax(rms[np.isfinite(rms)]) - LOUDEST_DB)
    return np.sort(loud[np.argsort(-rms[loud])][:PER_EXAMPLE])


def unit(e: np.ndarray) -> np.ndarray:
    return e / np.maximum(np.linalg.norm(e, axis=-1, keepdims=True), 1e-12)


def mix(x: np.ndarray, background: np.ndarray, snr_db: float, sound_dbfs: float) -> np.ndarray:
    """x plus `background` (looped to x's length) scaled to `snr_db` below the sound's level `sound_dbfs`."""
    bg = np.resize(np.asarray(background, np.float32), len(x))
    bg_dbfs = level(bg).rms_dbfs
    gain = 10 ** ((sound_dbfs - snr_db - bg_dbfs) / 20) if math.isfinite(bg_dbfs) else 0.0
    return (x + gain * bg).astype(np.float32)


def example_embeddings(model: Yamnet, x: np.ndarray, backgrounds: Sequence[np.ndarray],
                       rng: np.random.Generator) -> np.ndarray:
    """Unit embeddings of an example's sound patches, clean and mixed into some of `backgrounds` [n, 1024]."""
    p, rms = patches(x)
    loud = loudest(rms)
    batch = [p[loud]]
    picks = rng.choice(len(backgrounds), min(AUG_BACKGROUNDS, len(backgrounds)), replace=False)
    for i in picks:
        for snr in AUG_SNRS_DB:
            batch.append(patches(mix(x, backgrounds[i], snr, float(rms[loud].max())))[0][loud])
    return unit(model(np.concatenate(batch))[1])


def generated_background(seconds: float = 4.0, seed: int = 0) -> list[np.ndarray]:
    """Noise a home microphone hears without any event: white, pink, brown, mains hum, at -50 and -30 dBFS."""
    rng = np.random.default_rng(seed)
    n = round(seconds * SAMPLE_RATE)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    shapes = {"white": np.ones_like(f), "pink": 1 / np.sqrt(np.maximum(f, 20)), "brown": 1 / np.maximum(f, 20)}
    t = np.arange(n) / SAMPLE_RATE
    noises = [np.fft.irfft(spectrum * s, n) for s in shapes.values()]
    noises.append(sum(np.sin(2 * np.pi * 50 * h * t) / h for h in (1, 2, 3)) + 0.05 * rng.standard_normal(n))
    out = []
    for x in noises:
        for dbfs in (-50.0, -30.0):
            out.append((x * 10 ** (dbfs / 20) / math.sqrt(np.mean(x ** 2))).astype(np.float32))
    return out


@dataclass(frozen=True)
class Taught:
    prototypes: np.ndarray  # [n, 1024] unit rows: the examples' sound patches, clean and mixed
    counter: np.ndarray  # [m, 1024] unit rows: patches of the negatives and generated noise
    threshold: float
    release: float
    positives: np.ndarray  # each example's scores against the other examples (leave one example out)
    negative_max: np.ndarray  # each negative file's highest score, its own patches left out of the counter-examples
    negative_s: float  # s of negative audio


def calibrate(examples: Sequence[np.ndarray], negatives: Sequence[np.ndarray]) -> tuple[float, float, np.ndarray,
                                                                                         np.ndarray]:
    """(threshold, release, leave-one-out positives, per-file negative maxima) from unit embeddings.

    `examples`: per example [n_i, d]; `negatives`: per negative file [m_j, d]. A file is scored against the
    counter-examples of the other files, as a negative never heard at teaching time would be; the threshold sits
    THRESHOLD_MARGIN above the highest. (Letting the highest file through, as a budget of 15 false alarms per hour
    over ~5 minutes of negatives would, put the threshold at the edge of the rest and fired 9 times on the report
    negatives: bench/RESULTS.md.)
    """
    everything = np.concatenate(negatives)
    positives = np.concatenate([
        taught_score(e, np.concatenate([q for j, q in enumerate(examples) if j != i]), everything)
        for i, e in enumerate(examples)])
    bounds = np.cumsum([0] + [len(n) for n in negatives])
    maxima = np.array([taught_score(n, np.concatenate(examples),
                                    np.concatenate([everything[:bounds[j]], everything[bounds[j + 1]:]])).max()
                       for j, n in enumerate(negatives)])
    threshold = min(0.99, max(MIN_THRESHOLD, float(maxima.max()) + THRESHOLD_MARGIN))
    return threshold, threshold / 2, positives, maxima


def load_bank(path: Path = BANK) -> list[np.ndarray]:
    """The background bank's unit embeddings, one [n_i, 1024] array per source recording."""
    with np.load(path) as z:
        embeddings, groups = unit(z["embeddings"].astype(np.float32)), z["groups"]
    return [embeddings[groups == g] for g in np.unique(groups)]


def subsample(x: np.ndarray, n: int) -> np.ndarray:
    return x if len(x) <= n else x[np.linspace(0, len(x) - 1, n).round().astype(int)]


def teach(model: Yamnet, examples: Sequence[Path], negatives: Sequence[Path],
          bank: Sequence[np.ndarray] | None = None) -> Taught:
    """`bank`: background embedding groups to calibrate and contrast against (default: the shipped `BANK`)."""
    if not 3 <= len(examples) <= 10:
        raise ConfigError(f"teach takes 3 to 10 examples, got {len(examples)}")
    backgrounds = generated_background() + [read_audio(p) for p in negatives]
    rng = np.random.default_rng(0)
    embedded = []
    for path in examples:
        try:
            embedded.append(example_embeddings(model, read_audio(path), backgrounds, rng))
        except AudioError as exc:
            raise AudioError(f"example {path}: {exc}") from None
    counter = []
    for x in backgrounds:
        e, rms = patch_embeddings(model, x)
        keep = np.isfinite(rms) & (rms >= -60)  # the node's gate keeps quieter patches silent anyway
        if keep.any():
            counter.append(unit(e[keep]))
    bank = load_bank() if bank is None else list(bank)
    threshold, release, positives, maxima = calibrate(embedded, counter + bank)
    kept = np.concatenate([subsample(np.concatenate(counter), MAX_COUNTER), *bank])
    return Taught(np.concatenate(embedded), kept, threshold, release, positives, maxima,
                  sum(len(x) for x in backgrounds) / SAMPLE_RATE)


def check_new_rule(rules_file: Path, name: str) -> str:
    """The rules file's text; ConfigError if `name` is not a plain rule name or the file already has it."""
    import re
    import tomllib

    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise ConfigError(f"rule name {name!r}: use lower-case letters, digits and _ (it becomes an MQTT topic)")
    text = rules_file.read_text() if rules_file.exists() else ""
    try:
        existing = tomllib.loads(text).get("rules", {})
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"rules file {rules_file}: not valid TOML ({exc})") from None
    if name in existing:
        raise ConfigError(f"{rules_file} already has a rule {name!r}: pick another name or remove that rule first")
    return text


def write_rule(rules_file: Path, name: str, taught: Taught) -> Path:
    """Save the prototypes beside `rules_file` and add `[rules.<name>]` to it (created if missing)."""
    text = check_new_rule(rules_file, name)
    npz = rules_file.parent / f"{name}.npz"
    rules_file.parent.mkdir(parents=True, exist_ok=True)
    np.savez(npz, embeddings=taught.prototypes.astype(np.float32), counter=taught.counter.astype(np.float32))
    block = (f"\n[rules.{name}]\n# taught from examples by `stream teach`: the examples score "
             f"{np.quantile(taught.positives, 0.25):.3f} (low quartile, each against the others), "
             f"{taught.negative_s / 60:.1f} min of negatives at most {taught.negative_max.max():.3f}\n"
             f'prototypes = "{npz.name}"\nthreshold = {taught.threshold:.3f}\nrelease = {taught.release:.3f}\n'
             f"smooth = 1\ncooldown = {COOLDOWN}\n")
    rules_file.write_text(text.rstrip("\n") + ("\n" if text.strip() else "") + block)
    return npz
