"""Simulated meetings from the LibriSpeech utterances in ../shared/data/speakers: the tune and report sets.

Why: 12 AMI clips with at most 4 speakers are too few to choose a clustering on. These sessions cover 2-12
speakers and 2-60 minutes, with reverberant rooms, noise, overlap and backchannels, and come in two halves with
disjoint speakers: tune on ``tune/``, report on ``report/`` (never look at its per-file results while tuning).

How a session is made (deterministic for its seed):
- Speakers: both groups of ``index.csv`` (10 test-other speakers with ~100 s each, 251 train-clean-100 speakers with
  one ~14 s utterance) are split by speaker into halves (sorted ids, alternating); a session uses one half only,
  mostly mixing 1-5 long speakers with short ones.
- Turns: utterances are cut at pauses (energy below the utterance's 95th percentile - 30 dB for >= 0.3 s) into
  phrases; a turn is a run of consecutive phrases of one utterance, 0.5-15 s (log-normal target, median 3 s).
  Backchannels are short phrases of another speaker, mostly inside the current turn. The next turn overlaps the
  previous one while the session's overlap ratio is below its target (0-25 %), else it follows a pause.
- Reuse: a speaker who has used all their audio starts another pass over it, with other cuts (other turn lengths,
  another first utterance), speed changed by 3-10 % (soxr resampling) and another room.
- Room: a random shoebox (pyroomacoustics image source method, RT60 0.15-0.7 s), random source and mic positions;
  each speaker gets a level offset of +-6 dB. Noise: pink or brown, plus babble of unused speakers of the same half
  and mains hum, at 5-30 dB SNR against the speech's active level.
- Reference: one RTTM line per phrase (energy regions, reverberation tails excluded), one UEM region per file.

Outputs per folder: ``<session>.flac`` (16 kHz mono), ``reference.rttm``, ``reference.uem``, ``sessions.csv``.
The defaults write the protocol's sets (~15 min on one core):

    .venv/bin/python bench/simulate_meetings.py [--out /work/simdata] [--sets tune report long tune-dev tune-short] [--check]

``--check`` measures the written sets back (reference inside the UEM, speech ratio, overlap, SNR) and draws
``<out>/<set>-check.png``.
"""

from __future__ import annotations

import argparse
import csv
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from scipy.signal import fftconvolve, lfilter, oaconvolve

from stream.paths import data_dir
from stream.rttm import Turn, format_rttm, write_uem

RATE = 16000
HOP = 160  # energy frame hop, samples (10 ms)
FRAME = 320  # energy frame, samples (20 ms)
PAUSE_S = 0.3  # a pause at least this long ends a phrase
MIN_PHRASE_S = 0.12  # shorter energy islands are clicks, not speech
MAX_PHRASE_S = 8.0  # longer phrases are split at their quietest 100 ms
FLOOR_DB = 30.0  # speech = frames within this many dB of the utterance's 95th percentile
TURN_S = (0.5, 15.0)
BACKCHANNEL_S = (0.4, 1.2)
MARGIN = int(0.05 * RATE)  # audio kept around a turn's speech (near-silent), samples
LONG_GROUP = "librispeech_test-other"


@dataclass(frozen=True)
class SetSpec:
    """One output folder: ``count`` sessions from one speaker half."""

    name: str
    half: str  # "tune" or "report"
    count: int
    seed: int  # session i uses seed + i
    minutes: tuple[float, float]
    speakers: tuple[int, ...] = ()  # fixed speaker count; empty = 2..12 in turn
    absences: bool = False  # every speaker leaves for >= 5 minutes and comes back
    overlap: tuple[float, float] = (0.0, 0.25)  # range of the sessions' overlap ratio
    snr: tuple[float, float] = (5.0, 30.0)  # range of the sessions' SNR, dB


SETS = {
    "tune": SetSpec("tune", "tune", 22, 1000, (2.0, 10.0)),
    # tune-half sessions that `stream train-segmentation` never trains on: fine-tuned segmentation weights have
    # seen every `tune/` session, so the clustering behind them is chosen here (and on AMI), not on `tune/`
    "tune-dev": SetSpec("tune-dev", "tune", 11, 1500, (2.0, 4.0)),
    # short clips with many voices, one or two turns each (as in a voice-message or a panel excerpt): refinement
    # clusters with a few windows per voice, where a share-of-embeddings rule can swallow whole speakers
    "tune-short": SetSpec("tune-short", "tune", 16, 1700, (0.35, 1.0), speakers=(3, 4, 5, 6)),
    "report": SetSpec("report", "report", 24, 2000, (2.0, 4.0)),  # short: pyannote and diart must run on it too
    "long": SetSpec("long", "report", 1, 3000, (60.0, 60.0), speakers=(8,), absences=True, overlap=(0.08, 0.15),
                    snr=(10.0, 20.0)),  # a typical meeting, not an easy draw
}


@dataclass(frozen=True)
class Utterance:
    audio: np.ndarray  # float32, scaled to unit active RMS
    phrases: list[tuple[int, int]]  # speech regions, samples


@dataclass
class Voice:
    """A speaker's material and where the next turn is cut from (pass, utterance, phrase)."""

    speaker: str
    utterances: list[Utterance]
    weight: float  # relative talkativeness
    gain: float  # linear level offset
    passes: int = 0
    order: list[int] = field(default_factory=list)
    cursor: tuple[int, int] = (0, 0)  # (position in order, phrase)


@dataclass(frozen=True)
class Cut:
    """A piece of one utterance placed in the session: speech regions relative to the cut's audio."""

    speaker: str
    audio: np.ndarray
    regions: list[tuple[float, float]]  # s, relative to the speech onset (first region starts at 0)
    passes: int  # which pass over the speaker's audio (0 = first: original speed, session room)
    lead: int  # samples of audio before the speech onset


# ---------------------------------------------------------------- speakers and phrases


def speaker_groups(data: Path) -> dict[str, dict[str, list[Path]]]:
    """{group: {speaker id: utterance paths}} from ``speakers/index.csv``."""
    groups: dict[str, dict[str, list[Path]]] = {}
    with open(data / "speakers" / "index.csv", newline="") as f:
        for row in csv.DictReader(f):
            groups.setdefault(row["subset"], {}).setdefault(row["speaker_id"], []).append(
                data / "speakers" / row["path"])
    return {g: {s: sorted(p) for s, p in spk.items()} for g, spk in groups.items()}


def split_halves(groups: dict[str, dict[str, list[Path]]]) -> dict[str, dict[str, dict[str, list[Path]]]]:
    """{"tune"|"report": {group: {speaker: paths}}}: each group's speakers sorted by id, alternating."""
    halves: dict[str, dict[str, dict[str, list[Path]]]] = {"tune": {}, "report": {}}
    for group, speakers in groups.items():
        ids = sorted(speakers, key=lambda s: (len(s), s))
        for i, s in enumerate(ids):
            halves["tune" if i % 2 == 0 else "report"].setdefault(group, {})[s] = speakers[s]
    return halves


def frame_db(x: np.ndarray) -> np.ndarray:
    """Energy of 20 ms frames every 10 ms, dB."""
    n = max(1, 1 + (len(x) - FRAME) // HOP)
    idx = np.arange(FRAME)[None, :] + HOP * np.arange(n)[:, None]
    frames = np.pad(x, (0, max(0, FRAME - len(x))))[np.minimum(idx, max(len(x), FRAME) - 1)]
    return 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)


def find_phrases(x: np.ndarray) -> list[tuple[int, int]]:
    """Speech regions (samples) of a clean utterance: energy within FLOOR_DB of its loud frames, pauses < PAUSE_S
    bridged, islands < MIN_PHRASE_S dropped, phrases > MAX_PHRASE_S split at their quietest 100 ms."""
    db = frame_db(x)
    speech = db > np.percentile(db, 95) - FLOOR_DB
    runs = _runs(speech)
    merged: list[list[int]] = []
    for s, e in runs:
        if merged and (s - merged[-1][1]) * HOP < PAUSE_S * RATE:
            merged[-1][1] = e
        else:
            merged.append([s, e])
    out: list[tuple[int, int]] = []
    for s, e in merged:
        if (e - s) * HOP >= MIN_PHRASE_S * RATE:
            out += _split_long(db, s, e)
    return [(s * HOP, min(len(x), e * HOP + FRAME - HOP)) for s, e in out]


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


def _split_long(db: np.ndarray, s: int, e: int) -> list[tuple[int, int]]:
    limit = int(MAX_PHRASE_S * RATE / HOP)
    if e - s <= limit:
        return [(s, e)]
    edge = int(2.0 * RATE / HOP)
    smooth = np.convolve(db[s:e], np.ones(10) / 10, mode="same")
    cut = s + edge + int(np.argmin(smooth[edge:e - s - edge]))
    return _split_long(db, s, cut) + _split_long(db, cut, e)


@functools.lru_cache(maxsize=512)
def load_utterance(path: Path) -> Utterance:
    x, rate = sf.read(path, dtype="float32")
    if rate != RATE:
        raise ValueError(f"{path}: {rate} Hz, expected {RATE}")
    phrases = find_phrases(x)
    active = np.concatenate([x[s:e] for s, e in phrases])
    return Utterance(x / (np.sqrt(np.mean(active ** 2)) + 1e-9), phrases)


# ---------------------------------------------------------------- cutting turns


def next_cut(voice: Voice, target: float, rng: np.random.Generator) -> Cut:
    """The next turn of ``voice``: consecutive phrases of one utterance, until ``target`` s of span."""
    if not voice.order:
        voice.order = list(np.roll(np.arange(len(voice.utterances)), -rng.integers(len(voice.utterances)))
                           if voice.passes else range(len(voice.utterances)))
    pos, first = voice.cursor
    utt = voice.utterances[voice.order[pos]]
    last = first
    onset = utt.phrases[first][0]
    while (last + 1 < len(utt.phrases) and utt.phrases[last][1] - onset < target * RATE
           and utt.phrases[last + 1][1] - onset <= TURN_S[1] * RATE):
        last += 1
    cut = _cut(voice, utt, utt.phrases[first:last + 1])
    if last + 1 < len(utt.phrases):
        voice.cursor = (pos, last + 1)
    elif pos + 1 < len(voice.order):
        voice.cursor = (pos + 1, 0)
    else:
        voice.passes, voice.order, voice.cursor = voice.passes + 1, [], (0, 0)
    return cut


def backchannel(voice: Voice, rng: np.random.Generator) -> Cut:
    """A short phrase of ``voice`` (0.4-1.2 s): a short phrase if it has one, else the start of a phrase."""
    phrases = [(u, p) for u in voice.utterances for p in u.phrases]
    short = [(u, p) for u, p in phrases if BACKCHANNEL_S[0] * RATE <= p[1] - p[0] <= BACKCHANNEL_S[1] * RATE]
    utt, (s, e) = (short or phrases)[rng.integers(len(short or phrases))]
    e = min(e, s + int(rng.uniform(*BACKCHANNEL_S) * RATE))
    return _cut(voice, utt, [(s, e)])


def _cut(voice: Voice, utt: Utterance, phrases: list[tuple[int, int]]) -> Cut:
    lo, hi = max(0, phrases[0][0] - MARGIN), min(len(utt.audio), phrases[-1][1] + MARGIN)
    audio = utt.audio[lo:hi] * np.float32(voice.gain)
    fade = min(160, len(audio) // 4)
    ramp = np.linspace(0, 1, fade, dtype=np.float32)
    audio[:fade] *= ramp
    audio[len(audio) - fade:] *= ramp[::-1]
    onset = phrases[0][0]
    return Cut(voice.speaker, audio, [((s - onset) / RATE, (e - onset) / RATE) for s, e in phrases], voice.passes,
               onset - lo)


# ---------------------------------------------------------------- the conversation


@dataclass(frozen=True)
class Placed:
    cut: Cut
    onset: float  # s, speech onset in the session


def converse(voices: list[Voice], duration: float, overlap: float, rng: np.random.Generator,
             present: list[set[str]] | None = None) -> list[Placed]:
    """Turn-taking until ``duration`` s: weighted speaker choice (never the current speaker), overlap while the
    session's overlap ratio is below ``overlap``, backchannels; ``present[k]`` = speakers allowed in the k-th
    equal block of the session (the long meeting's absences)."""
    grid = np.zeros(int(duration * 100) + 3000, np.int8)  # speakers active per 10 ms
    placed: list[Placed] = []
    end, current = 0.5, ""

    def place(cut: Cut, onset: float) -> None:
        placed.append(Placed(cut, onset))
        for s, e in cut.regions:
            grid[int((onset + s) * 100):int((onset + e) * 100)] += 1

    def ratio() -> float:
        speech = np.count_nonzero(grid)
        return np.count_nonzero(grid > 1) / speech if speech else 0.0

    by_name = {v.speaker: v for v in voices}
    while end < duration - 1.0 or ({p.cut.speaker for p in placed} < set(by_name) and not present):
        # (a short session runs on until every voice has spoken; the sets that never ran short are unchanged)
        allowed = present[min(len(present) - 1, int(end / duration * len(present)))] if present else set(by_name)
        names = sorted(n for n in allowed if n != current) or sorted(allowed)
        heard = {p.cut.speaker for p in placed}
        w = np.array([by_name[n].weight * (1.0 if n in heard else 4.0) for n in names])  # everyone speaks early
        current = names[rng.choice(len(names), p=w / w.sum())]
        target = float(np.clip(np.exp(rng.normal(np.log(3.0), 0.8)), *TURN_S))
        cut = next_cut(by_name[current], target, rng)
        span = cut.regions[-1][1]
        if placed and ratio() < overlap:
            onset = max(0.0, end - rng.uniform(0.2, max(0.3, min(2.5, 0.8 * span))))
        else:
            onset = end + (rng.uniform(2.0, 6.0) if rng.random() < 0.05 else 0.1 + rng.exponential(0.5))
        place(cut, onset)
        end = max(end, onset + span)
        others = sorted(n for n in allowed if n != current)
        if span >= 2.0 and others and rng.random() < 0.35:
            bc = backchannel(by_name[others[rng.integers(len(others))]], rng)
            if ratio() < overlap:
                place(bc, onset + rng.uniform(0.3, span - 0.5))
            else:
                bc_onset = end + 0.1 + rng.exponential(0.3)
                place(bc, bc_onset)
                end = bc_onset + bc.regions[-1][1]
    return placed


# ---------------------------------------------------------------- acoustics


def random_room(rng: np.random.Generator, sources: int) -> list[np.ndarray]:
    """RIRs (direct path at sample 0, unit energy) from ``sources`` random positions to one mic in a random
    shoebox room."""
    import pyroomacoustics as pra

    dim = np.array([rng.uniform(3, 10), rng.uniform(3, 8), rng.uniform(2.5, 4)])
    rt60 = rng.uniform(0.15, 0.7)
    absorption, order = pra.inverse_sabine(rt60, dim)
    room = pra.ShoeBox(dim, fs=RATE, materials=pra.Material(absorption), max_order=min(order, 40))
    mic = np.array([rng.uniform(1, dim[0] - 1), rng.uniform(1, dim[1] - 1), rng.uniform(0.8, 1.5)])
    room.add_microphone(mic)
    for _ in range(sources):
        for _ in range(100):  # 0.5-4 m from the mic, 0.4 m from the walls
            pos = np.array([rng.uniform(0.4, dim[0] - 0.4), rng.uniform(0.4, dim[1] - 0.4), rng.uniform(1.1, 1.8)])
            if 0.5 <= np.linalg.norm(pos - mic) <= 4.0:
                break
        room.add_source(pos)
    room.compute_rir()
    rirs = []
    for rir in room.rir[0]:
        rir = np.asarray(rir[int(np.argmax(np.abs(rir))):], np.float32)
        rirs.append(rir / np.sqrt(np.sum(rir ** 2)))
    return rirs


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    """Pink noise (-3 dB/octave, Kellet's IIR approximation)."""
    b = [0.049922035, -0.095993537, 0.050612699, -0.004408786]
    a = [1, -2.494956002, 2.017265875, -0.522189400]
    return lfilter(b, a, rng.standard_normal(n)).astype(np.float32)


def brown(n: int, rng: np.random.Generator) -> np.ndarray:
    """Brown noise (-6 dB/octave), a leaky integrator with the DC drift removed."""
    x = lfilter([1.0], [1.0, -0.995], rng.standard_normal(n)).astype(np.float32)
    return x - lfilter([0.01], [1.0, -0.99], x).astype(np.float32)


def hum(n: int, rng: np.random.Generator) -> np.ndarray:
    f0 = 50.0 if rng.random() < 0.5 else 60.0
    t = np.arange(n) / RATE
    return sum(a * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi))
               for k, a in zip(range(1, 6), (1.0, 0.5, 0.3, 0.2, 0.1))).astype(np.float32)


def babble(n: int, paths: list[Path], rng: np.random.Generator) -> np.ndarray:
    """Unlabelled far-away talkers: each loops their audio from a random offset, all reverberated together."""
    out = np.zeros(n, np.float32)
    for path in paths:
        x = load_utterance(path).audio
        loop = np.tile(x, n // len(x) + 2)
        start = rng.integers(len(x))
        out += loop[start:start + n]
    return oaconvolve(out, random_room(rng, 1)[0])[:n].astype(np.float32)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


# ---------------------------------------------------------------- one session


@dataclass(frozen=True)
class Session:
    name: str
    audio: np.ndarray  # 16 kHz mono float32
    turns: list[Turn]  # reference speech, one per phrase
    seed: int
    snr: float  # dB, speech active level over noise
    overlap_target: float  # the ratio the conversation aimed at


def simulate(name: str, seed: int, speakers: dict[str, list[Path]], minutes: float, long_ids: set[str],
             babble_paths: list[Path], *, reverb: bool = True,
             snr: float | tuple[float, float] | None = (5.0, 30.0), overlap: float | tuple[float, float] = (0.0, 0.25),
             absences: bool = False) -> Session:
    """One session of ``speakers`` ({id: utterance paths}). ``snr`` (dB) and ``overlap`` (ratio of speech): a
    value, or a range to draw from; ``snr`` None = no noise."""
    rng = np.random.default_rng(seed)
    voices = [Voice(s, [load_utterance(p) for p in paths],
                    weight=rng.uniform(1.0, 2.0) if s in long_ids else rng.uniform(0.4, 1.0),
                    gain=10 ** (rng.uniform(-6, 6) / 20))
              for s, paths in sorted(speakers.items())]
    overlap = rng.uniform(*overlap) if isinstance(overlap, tuple) else overlap
    duration = 60.0 * minutes
    present = _absences([v.speaker for v in voices], rng) if absences else None
    placed = converse(voices, duration, overlap, rng, present)

    rooms: dict[tuple[str, int], np.ndarray] = {}
    if reverb:
        for v, rir in zip(voices, random_room(rng, len(voices))):
            rooms[(v.speaker, 0)] = rir
    speeds: dict[tuple[str, int], float] = {}
    length = int((max(p.onset + p.cut.regions[-1][1] for p in placed) + 1.0) * RATE)
    clean = np.zeros(length + RATE, np.float32)
    turns: list[Turn] = []
    for p in placed:
        key = (p.cut.speaker, p.cut.passes)
        if key not in speeds:
            speeds[key] = 1.0 if p.cut.passes == 0 else float(rng.choice([-1, 1]) * rng.uniform(0.03, 0.10) + 1)
            if reverb and key not in rooms:
                rooms[key] = random_room(rng, 1)[0]
        speed = speeds[key]
        audio = p.cut.audio if speed == 1.0 else soxr.resample(p.cut.audio, RATE, RATE / speed).astype(np.float32)
        level = np.float32(10 ** (rng.normal(0, 1.0) / 20))
        if reverb:
            audio = fftconvolve(audio, rooms[key]).astype(np.float32)
        start = int(round(p.onset * RATE)) - int(round(p.cut.lead / speed))
        lo = max(0, start)
        clean[lo:start + len(audio)] += level * audio[lo - start:len(clean) - start]
        turns += [Turn(p.onset + s / speed, p.onset + e / speed, p.cut.speaker) for s, e in p.cut.regions]
    clean = clean[:length]
    turns = merge_turns(turns)
    speech_level = rms(clean[speech_mask(turns, length)])
    if isinstance(snr, tuple):
        snr = float(rng.uniform(*snr))
    if snr is not None:
        noise = pink(length, rng) if rng.random() < 0.5 else brown(length, rng)
        noise /= rms(noise)
        if babble_paths and rng.random() < 0.5:
            chosen = [babble_paths[i] for i in rng.choice(len(babble_paths), min(6, len(babble_paths)), False)]
            b = babble(length, chosen, rng)
            noise += b / rms(b) * 10 ** (-rng.uniform(6, 12) / 20)
        if rng.random() < 0.3:
            h = hum(length, rng)
            noise += h / rms(h) * 10 ** (-rng.uniform(10, 20) / 20)
        clean += noise * np.float32(speech_level / rms(noise) * 10 ** (-snr / 20))
    gain = min(10 ** (-26 / 20) / max(speech_level, 1e-9), 0.95 / max(float(np.abs(clean).max()), 1e-9))
    return Session(name, (clean * np.float32(gain)).astype(np.float32), turns, seed,
                   float("inf") if snr is None else snr, overlap)


def _absences(names: list[str], rng: np.random.Generator, blocks: int = 8) -> list[set[str]]:
    """Who may talk in each of ``blocks`` equal blocks: speaker i is away in blocks i and i + blocks/2 (shuffled
    speaker order), so each leaves for at least one whole block and comes back."""
    order = [names[i] for i in rng.permutation(len(names))]
    return [{n for i, n in enumerate(order) if k not in (i % blocks, (i + blocks // 2) % blocks)}
            for k in range(blocks)]


def merge_turns(turns: list[Turn]) -> list[Turn]:
    """Per speaker, overlapping or touching regions joined (a backchannel may land on the speaker's own turn)."""
    out: list[Turn] = []
    for label in sorted({t.label for t in turns}):
        spans = sorted((t.start, t.end) for t in turns if t.label == label)
        cur = list(spans[0])
        for s, e in spans[1:]:
            if s <= cur[1] + 1e-3:
                cur[1] = max(cur[1], e)
            else:
                out.append(Turn(cur[0], cur[1], label))
                cur = [s, e]
        out.append(Turn(cur[0], cur[1], label))
    return sorted(out)


def speech_mask(turns: list[Turn], length: int) -> np.ndarray:
    mask = np.zeros(length, bool)
    for t in turns:
        mask[int(t.start * RATE):int(t.end * RATE)] = True
    return mask


def dilate(mask: np.ndarray, half: int) -> np.ndarray:
    """True within ``half`` samples of a True sample."""
    cs = np.concatenate([[0], np.cumsum(mask, dtype=np.int64)])
    idx = np.arange(len(mask))
    return cs[np.minimum(idx + half + 1, len(mask))] - cs[np.maximum(idx - half, 0)] > 0


def overlap_ratio(turns: list[Turn]) -> float:
    """Seconds with >= 2 speakers over seconds with >= 1 (10 ms grid)."""
    end = int(max(t.end for t in turns) * 100) + 1
    count = np.zeros(end, np.int16)
    for t in turns:
        count[int(round(t.start * 100)):int(round(t.end * 100))] += 1
    return float(np.count_nonzero(count > 1) / max(1, np.count_nonzero(count)))


def longest_absence(turns: list[Turn]) -> float:
    """The shortest, over speakers, of each speaker's longest silence between two of their turns (s)."""
    gaps = []
    for label in {t.label for t in turns}:
        mine = sorted(t for t in turns if t.label == label)
        gaps.append(max((b.start - a.end for a, b in zip(mine, mine[1:])), default=0.0))
    return min(gaps)


# ---------------------------------------------------------------- a set of sessions


def session_plan(spec: SetSpec, half: dict[str, dict[str, list[Path]]]) -> Iterator[tuple[str, int, dict, float]]:
    """(name, seed, {speaker: paths}, minutes) per session: speaker counts 2..12 in turn, 1-5 long speakers."""
    long_ids, short_ids = sorted(half[LONG_GROUP]), sorted(s for g, spk in half.items() if g != LONG_GROUP
                                                          for s in spk)
    every = {s: p for spk in half.values() for s, p in spk.items()}
    for i in range(spec.count):
        seed = spec.seed + i
        rng = np.random.default_rng([seed, 7])
        n = spec.speakers[i % len(spec.speakers)] if spec.speakers else 2 + i % 11
        n_long = min(len(long_ids), n) if spec.absences else int(rng.integers(1, min(n, len(long_ids)) + 1))
        chosen = [long_ids[j] for j in rng.choice(len(long_ids), n_long, False)]
        chosen += [short_ids[j] for j in rng.choice(len(short_ids), n - n_long, False)]
        yield f"{spec.name}-{i:02d}", seed, {s: every[s] for s in chosen}, float(rng.uniform(*spec.minutes))


def write_set(spec: SetSpec, out: Path, data: Path) -> Path:
    """Write one folder of sessions; returns it."""
    half = split_halves(speaker_groups(data))[spec.half]
    long_ids = set(half[LONG_GROUP])
    folder = out / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    rows, rttm, uem = [], [], {}
    for name, seed, speakers, minutes in session_plan(spec, half):
        unused = [p for spk in half.values() for s, paths in spk.items() if s not in speakers for p in paths]
        rng = np.random.default_rng([seed, 11])
        babble_paths = [unused[j] for j in rng.choice(len(unused), 12, False)]
        s = simulate(name, seed, speakers, minutes, long_ids, babble_paths, absences=spec.absences, snr=spec.snr,
                     overlap=spec.overlap)
        if {t.label for t in s.turns} != set(speakers):
            raise RuntimeError(f"{name}: {len(speakers) - len({t.label for t in s.turns})} speakers never spoke")
        sf.write(folder / f"{name}.flac", s.audio, RATE, subtype="PCM_16")
        duration = len(s.audio) / RATE
        rttm.append((name, s.turns))
        uem[name] = [(0.0, duration)]
        rows.append({"session": name, "speakers": len(speakers), "long_speakers": len(long_ids & set(speakers)),
                     "duration": f"{duration:.1f}", "overlap": f"{100 * overlap_ratio(s.turns):.1f}",
                     "snr": f"{s.snr:.1f}", "seed": seed,
                     "longest_absence": f"{longest_absence(s.turns):.0f}" if spec.absences else ""})
        print(f"{folder / name}.flac  {len(speakers):2d} speakers  {duration / 60:5.1f} min  "
              f"overlap {rows[-1]['overlap']:>5} %  SNR {rows[-1]['snr']:>5} dB", flush=True)
    (folder / "reference.rttm").write_text("".join(format_rttm(name, turns) for name, turns in rttm),
                                           encoding="utf-8")
    write_uem(folder / "reference.uem", uem)
    with open(folder / "sessions.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder


# ---------------------------------------------------------------- listen-free checks of a written folder


def check_set(folder: Path, plot: Path | None = None) -> list[dict[str, float]]:
    """Per file, measured back from the FLAC and the RTTM: reference speech inside the UEM, speech ratio, overlap,
    SNR (speech-region power over the power >= 0.5 s from any speech, minus one), speakers. Prints a table;
    ``plot`` draws the first session's energy under its reference lanes and the set's overlap/SNR spread."""
    from stream.rttm import read_rttm, read_uem

    refs, uems = read_rttm(folder / "reference.rttm"), read_uem(folder / "reference.uem")
    rows = []
    print(f"{'session':<10} {'min':>5} {'spk':>3} {'in UEM':>6} {'speech':>6} {'overlap':>7} {'SNR dB':>6}")
    for path in sorted(folder.glob("*.flac")):
        audio, _ = sf.read(path, dtype="float32")
        turns, (start, end) = refs[path.stem], uems[path.stem][0]
        speech = speech_mask(turns, len(audio))
        far = ~dilate(speech, RATE // 2)
        p_speech, p_noise = np.mean(audio[speech] ** 2), np.mean(audio[far] ** 2) if far.any() else 0.0
        row = {"session": path.stem, "minutes": len(audio) / RATE / 60, "speakers": len({t.label for t in turns}),
               "inside": float(all(start <= t.start and t.end <= end for t in turns)), "speech": speech.mean(),
               "overlap": 100 * overlap_ratio(turns),
               "snr": 10 * np.log10(max(p_speech / max(p_noise, 1e-12) - 1, 1e-3)) if p_noise else float("inf")}
        rows.append(row)
        print(f"{row['session']:<10} {row['minutes']:5.1f} {row['speakers']:3d} {row['inside']:6.0f} "
              f"{row['speech']:6.2f} {row['overlap']:7.1f} {row['snr']:6.1f}")
    if plot:
        _plot(plot, folder, rows, refs)
    return rows


def _plot(path: Path, folder: Path, rows: list[dict], refs: dict[str, list[Turn]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = rows[0]["session"]
    audio, _ = sf.read(folder / f"{first}.flac", dtype="float32", frames=120 * RATE)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(13, 8), gridspec_kw={"height_ratios": [2, 1]})
    db = frame_db(audio)
    top.plot(np.arange(len(db)) * HOP / RATE, db, lw=0.3, color="0.4")
    labels = sorted({t.label for t in refs[first]})
    for t in refs[first]:
        if t.start < len(audio) / RATE:
            k = labels.index(t.label)
            top.plot([t.start, min(t.end, len(audio) / RATE)], [db.max() + 3 + 3 * k] * 2, lw=4, color=f"C{k}")
    top.set(title=f"{first}: frame energy (dB) and reference turns, first 2 minutes", xlabel="s", ylabel="dB")
    bottom.scatter([r["snr"] for r in rows], [r["overlap"] for r in rows], c=[r["speakers"] for r in rows])
    for r in rows:
        bottom.annotate(str(r["speakers"]), (r["snr"], r["overlap"]), fontsize=7)
    bottom.set(xlabel="measured SNR (dB)", ylabel="overlap (% of speech)", title=f"{folder.name}: sessions (speakers)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/work/simdata"))
    parser.add_argument("--sets", nargs="+", choices=sorted(SETS), default=["tune", "report", "long"])
    parser.add_argument("--check", action="store_true", help="only measure the written sets back (and plot)")
    args = parser.parse_args()
    for name in args.sets:
        if args.check:
            check_set(args.out / name, args.out / f"{name}-check.png")
        else:
            print(f"{name}: {write_set(SETS[name], args.out, data_dir())}")


if __name__ == "__main__":
    main()
