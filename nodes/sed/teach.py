"""Custom sounds from a few examples: prototypes on YAMNet's embedding and a threshold that keeps quiet on negatives.

`stream teach NAME EXAMPLE... --rules FILE.toml [--negatives DIR]`:
1. every example runs through the same `Detector` front end and model as the node (patches every 0.16 s); its
   prototypes are the embeddings of its loudest patches (within `LOUDEST_DB` of its loudest, at most
   `PER_EXAMPLE`), so a short sound inside a longer recording is what gets learned;
2. how alike the examples are: each example's best cosine similarity to the *other* examples' prototypes
   (leave one out), a lower bound for what a new occurrence scores;
3. how alike the rest is: the highest similarity of any patch of the negatives (the user's own background
   recordings with --negatives, plus generated noise: white, pink, brown and mains hum at several levels);
4. threshold = the negatives' highest + `MARGIN` of the gap up to the examples' low quartile (see `calibrate`).
The rule is written as `[rules.NAME]` with `prototypes = "NAME.npz"` beside the rules file; the node detects it
like any other rule (nodes/sed/decode.py `pool`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nodes.capture.files import read_blocks
from nodes.sed.decode import level
from nodes.sed.detector import PATCH_SAMPLES, hop_frames
from nodes.sed.frontend import HOP, SAMPLE_RATE, StreamingLogMel
from nodes.sed.yamnet import PATCH_FRAMES, Yamnet
from stream.errors import AudioError, ConfigError

LOUDEST_DB = 6.0  # dB below an example's loudest patch that still counts as the sound
PER_EXAMPLE = 4  # prototypes per example, at most
MARGIN = 0.4  # threshold = negatives' max + MARGIN x (examples' low quartile - negatives' max)
TEACH_HOP = 0.16  # s between patches when embedding examples and negatives


def patch_embeddings(model: Yamnet, samples: np.ndarray, hop: float = TEACH_HOP) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings [patches, 1024], RMS dBFS [patches]) of mono 16 kHz audio; shorter audio is padded to a patch."""
    x = np.asarray(samples, np.float32)
    if len(x) < PATCH_SAMPLES:
        x = np.concatenate([x, np.zeros(PATCH_SAMPLES - len(x), np.float32)])
    frames = StreamingLogMel().push(x)
    step = hop_frames(hop)
    starts = range(0, len(frames) - PATCH_FRAMES + 1, step)
    patches = np.stack([frames[f:f + PATCH_FRAMES] for f in starts])
    _, embeddings = model(patches)
    rms = np.array([level(x[f * HOP:f * HOP + PATCH_SAMPLES]).rms_dbfs for f in starts])
    return embeddings, rms


def read_audio(path: Path) -> np.ndarray:
    return np.concatenate(list(read_blocks(path, SAMPLE_RATE)))


def prototypes(embeddings: np.ndarray, rms: np.ndarray) -> np.ndarray:
    """The embeddings of an example's loudest patches [<= PER_EXAMPLE, 1024], unit norm."""
    if not np.isfinite(rms).any():
        raise AudioError("the example is digital silence")
    loud = np.flatnonzero(rms >= np.nanmax(rms[np.isfinite(rms)]) - LOUDEST_DB)
    loud = loud[np.argsort(-rms[loud])][:PER_EXAMPLE]
    e = embeddings[np.sort(loud)]
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)


def similarity(embeddings: np.ndarray, protos: np.ndarray) -> np.ndarray:
    """Best cosine similarity of each embedding [n, d] to the prototypes [m, d]."""
    e = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    return (e @ protos.T).max(1) if len(e) else np.zeros(0)


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
    prototypes: np.ndarray  # [n, 1024] unit rows
    threshold: float
    release: float
    positives: np.ndarray  # leave-one-example-out similarities of the examples' sound patches
    negative_max: float  # highest similarity of any negative patch


def calibrate(example_protos: Sequence[np.ndarray], negatives: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(threshold, release, leave-one-out positives) from per-example prototypes and negative similarities."""
    positives = np.concatenate([
        similarity(p, np.concatenate([q for j, q in enumerate(example_protos) if j != i]))
        for i, p in enumerate(example_protos)])
    low = float(np.quantile(positives, 0.25))
    top = float(negatives.max()) if len(negatives) else 0.0
    threshold = top + MARGIN * (low - top) if low > top else top + 0.02
    threshold = min(0.99, max(0.05, threshold))
    return threshold, max(0.0, min(threshold, (threshold + top) / 2)), positives


def teach(model: Yamnet, examples: Sequence[Path], negatives: Sequence[Path]) -> Taught:
    if not 3 <= len(examples) <= 10:
        raise ConfigError(f"teach takes 3 to 10 examples, got {len(examples)}")
    protos = []
    for path in examples:
        try:
            protos.append(prototypes(*patch_embeddings(model, read_audio(path))))
        except AudioError as exc:
            raise AudioError(f"example {path}: {exc}") from None
    allp = np.concatenate(protos)
    background = [patch_embeddings(model, x) for x in generated_background()]
    background += [patch_embeddings(model, read_audio(p)) for p in negatives]
    neg = np.concatenate([similarity(e, allp)[np.isfinite(r) & (r >= -60)] for e, r in background])
    threshold, release, positives = calibrate(protos, neg)
    return Taught(allp, threshold, release, positives, float(neg.max()) if len(neg) else 0.0)


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
    np.savez(npz, embeddings=taught.prototypes.astype(np.float32))
    block = (f"\n[rules.{name}]\n# taught from examples by `stream teach`: leave-one-out similarity of the examples "
             f"{np.quantile(taught.positives, 0.25):.3f} (low quartile), negatives at most {taught.negative_max:.3f}\n"
             f'prototypes = "{npz.name}"\nthreshold = {taught.threshold:.3f}\nrelease = {taught.release:.3f}\n'
             "smooth = 1\n")
    rules_file.write_text(text.rstrip("\n") + ("\n" if text.strip() else "") + block)
    return npz
