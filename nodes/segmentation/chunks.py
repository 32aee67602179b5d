"""Training chunks for segmentation fine-tuning: random crops of labelled conversations, augmented.

Data: a folder of audio files with a `reference.rttm` naming them (and optionally a `reference.uem`), e.g. a set
written by `bench/simulate_meetings.py`. A chunk is `chunk_s` seconds from a random file (files drawn by length,
crops inside the file's UEM); its target is each local speaker's activity at the model's frame centres, speakers
ordered by first appearance. Chunks with more speakers than the model has slots (3) are drawn again, as pyannote's
SpeakerDiarization task skips them: a target that drops a talker would teach the model to ignore voices.

Augmentation (each drawn per chunk): reverberation by a synthetic room response (exponentially decaying noise,
RT60 0.2-0.8 s), coloured noise (spectral slope 0 to -6 dB/octave) at 5-30 dB SNR, and a level change of -20 to
+6 dB (clipped at full scale). A chunk depends only on (seed, step, index), so a resumed run draws the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import fftconvolve

from nodes.segmentation.model import FRAME_DURATION, FRAME_STEP, SAMPLE_RATE, num_frames
from nodes.segmentation.powerset import NUM_SPEAKERS
from nodes.segmentation.train_config import Augmentation
from stream.errors import ConfigError

MAX_DRAWS = 50  # crops tried per chunk before accepting one with too many speakers (its extra talkers dropped)


@dataclass(frozen=True)
class Conversation:
    """One labelled recording, in memory: int16 samples at 16 kHz, turns as arrays, scored region."""

    name: str
    audio: np.ndarray  # int16 [samples]
    starts: np.ndarray  # float [turns], s
    ends: np.ndarray  # float [turns], s
    speakers: np.ndarray  # int [turns], index into the file's own speaker list
    region: tuple[float, float]  # s, where crops may start and end (the UEM's extent)


def load_conversations(folder: Path) -> list[Conversation]:
    """Every audio file of `folder` that `folder/reference.rttm` names, with its turns (UEM extent if given)."""
    from nodes.capture.files import audio_files
    from nodes.embedding.files import load_audio
    from stream.rttm import read_rttm, read_uem

    rttm = Path(folder) / "reference.rttm"
    if not rttm.is_file():
        raise ConfigError(f"{folder} has no reference.rttm: give a folder of labelled conversations, e.g. one "
                          "written by bench/simulate_meetings.py")
    references = read_rttm(rttm)
    uems = read_uem(Path(folder) / "reference.uem") if (Path(folder) / "reference.uem").is_file() else {}
    out = []
    for path in audio_files([Path(folder)]):
        turns = references.get(path.stem)
        if not turns:
            continue
        audio = load_audio(path)
        duration = len(audio) / SAMPLE_RATE
        regions = uems.get(path.stem, [(0.0, duration)])
        labels = sorted({t.label for t in turns})
        out.append(Conversation(
            path.stem, np.clip(np.round(audio * 32767), -32768, 32767).astype(np.int16),
            np.array([t.start for t in turns]), np.array([t.end for t in turns]),
            np.array([labels.index(t.label) for t in turns]),
            (max(0.0, regions[0][0]), min(duration, regions[-1][1]))))
    if not out:
        raise ConfigError(f"no audio file in {folder} is named in its reference.rttm (by file stem)")
    return out


def frame_targets(c: Conversation, start: float, frames: int) -> np.ndarray:
    """[frames, speakers of the chunk] 0/1 activity at the frame centres of a chunk starting at `start` s; columns
    in order of first activity."""
    centres = start + np.arange(frames) * FRAME_STEP + FRAME_DURATION / 2
    inside = (c.starts < centres[-1] + FRAME_STEP) & (c.ends > centres[0] - FRAME_STEP)
    active = (c.starts[inside, None] <= centres) & (centres < c.ends[inside, None])  # [turns, frames]
    per_speaker: dict[int, np.ndarray] = {}
    for speaker, row in zip(c.speakers[inside], active):
        per_speaker[int(speaker)] = per_speaker.get(int(speaker), np.zeros(frames, bool)) | row
    columns = sorted((np.argmax(v), s) for s, v in per_speaker.items() if v.any())
    return np.stack([per_speaker[s] for _, s in columns], axis=1).astype(np.float32) if columns \
        else np.zeros((frames, 0), np.float32)


def draw_chunk(conversations: list[Conversation], samples: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(float32 audio [samples], targets [frames, 3]) of one crop with at most 3 speakers (see module docstring)."""
    lengths = np.array([c.region[1] - c.region[0] for c in conversations])
    seconds = samples / SAMPLE_RATE
    if lengths.max() < seconds:
        raise ConfigError(f"every conversation is shorter than the {seconds:g} s chunk; use shorter chunks")
    weights = np.where(lengths >= seconds, lengths, 0.0)
    frames = num_frames(samples)
    for _ in range(MAX_DRAWS):
        c = conversations[rng.choice(len(conversations), p=weights / weights.sum())]
        start = rng.uniform(c.region[0], c.region[1] - seconds)
        targets = frame_targets(c, start, frames)
        if targets.shape[1] <= NUM_SPEAKERS:
            break
    first = int(round(start * SAMPLE_RATE))
    audio = c.audio[first:first + samples].astype(np.float32) / 32768
    out = np.zeros((frames, NUM_SPEAKERS), np.float32)
    out[:, :min(NUM_SPEAKERS, targets.shape[1])] = targets[:, :NUM_SPEAKERS]
    return np.pad(audio, (0, samples - len(audio))), out


def room_response(rt60: float, rng: np.random.Generator) -> np.ndarray:
    """A synthetic impulse response: a unit direct path, then noise decaying 60 dB in `rt60` s (unit energy)."""
    n = int(rt60 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60) * 0.3
    tail[0] = 1.0
    return (tail / np.sqrt(np.sum(tail ** 2))).astype(np.float32)


def coloured_noise(n: int, slope: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise with power spectrum 1 / f^`slope` (0 white, 1 pink, 2 brown)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.maximum(np.fft.rfftfreq(n, 1 / SAMPLE_RATE), 20.0)
    x = np.fft.irfft(spectrum / freqs ** (slope / 2), n)
    return (x / (np.sqrt(np.mean(x ** 2)) + 1e-12)).astype(np.float32)


def augment(audio: np.ndarray, aug: Augmentation, rng: np.random.Generator) -> np.ndarray:
    """Reverberation, noise and level of one chunk (see module docstring); the targets stay as they are."""
    x = audio
    if rng.random() < aug.reverb:
        x = fftconvolve(x, room_response(rng.uniform(*aug.rt60), rng))[:len(x)].astype(np.float32)
    if rng.random() < aug.noise:
        level = np.sqrt(np.mean(x ** 2)) + 1e-6
        x = x + coloured_noise(len(x), rng.uniform(0, 2), rng) * level * 10 ** (-rng.uniform(*aug.snr_db) / 20)
    x = x * 10 ** (rng.uniform(*aug.level_db) / 20)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def training_batch(conversations: list[Conversation], batch: int, samples: int, aug: Augmentation, seed: int,
                   step: int) -> tuple[np.ndarray, np.ndarray]:
    """(audio [batch, samples], targets [batch, frames, 3]) of training step `step`: the same for the same seed."""
    rng = np.random.default_rng([seed, step])
    chunks = [draw_chunk(conversations, samples, rng) for _ in range(batch)]
    audio = np.stack([augment(a, aug, rng) for a, _ in chunks])
    return audio, np.stack([t for _, t in chunks])
