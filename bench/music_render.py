#!/usr/bin/env python3
"""Music development data: rendered pieces with known beats and chords, plus the real recordings, split in halves.

Two kinds of rendered items, each a FLAC with a `.beats` (time, beat in bar) and, where known, a chord `.lab`
(start end Harte label), all seeded so a set is rebuilt bit for bit:

- **corpus**: music21 corpus pieces (Bach chorales and more; BSD) played with a tempo curve, rubato (phrase-end
  ritardandi at fermatas and bar ends), per-note timing and velocity humanisation, and one of several
  instrumentations. `piano` items use strong rubato (the "expressive piano" category), `ensemble` items milder.
  Beats are the score's beats through the same tempo map; chords come from the chordified score per beat.
- **groove**: generated pop / rock / dance / waltz songs with drums, bass and chords (pretty-midi), 60-200 BPM, 3/4
  and 4/4, some with a tempo step or ramp (`change_s` in the manifest: when the tempo changed).

Rendering: fluidsynth with Debian's General MIDI soundfont (`apt-get install fluidsynth fluid-soundfont-gm`);
Python: `pip install -e ".[bench]"` (pretty-midi, music21). The real recordings in `$STREAM_DATA_DIR/music/` are
listed, never copied. Every item gets a split, tune or report, alternating within its category in an order fixed
by a hash of its id: tune on the tune half only, report on the other.

    python bench/music_render.py --out ~/.cache/stream/music-dev              # default set, ~40 + 40 items
    python bench/music_render.py --out DIR --corpus 4 --grooves 4 --seed 1     # a small one

The manifest `DIR/tracks.csv` has id, kind, audio, beats, chords, duration_s (the columns
`../shared/peers/music_peers.py` reads) plus split, category, style, meter, bpm, change_s, source. `load_tracks`
reads it back. In code: `render_groove(seed, out_dir)` / `render_corpus(path, seed, out_dir)` return a `Track`.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
RATE = 22050  # Hz of the rendered FLACs: enough for beats, chords and fingerprints
MAX_SECONDS = 60.0  # rendered items are cut at the last bar line before this
FIELDS = ["id", "kind", "audio", "beats", "chords", "duration_s", "split", "category", "style", "meter", "bpm",
          "change_s", "source"]


@dataclass
class Note:
    """One note in score time (quarter notes from the start)."""

    start: float
    end: float
    pitch: int
    velocity: int
    program: int  # General MIDI program (0-127); ignored for drums
    drum: bool = False


@dataclass
class Score:
    """Notes, beats (quarter offset, beat in bar) and chord spans (start, end in quarters, Harte label)."""

    notes: list[Note]
    beats: list[tuple[float, int]]
    chords: list[tuple[float, float, str]]
    length: float  # quarters
    meter: int  # beats per bar
    phrase_ends: list[float] = field(default_factory=list)  # quarters where a phrase ends (ritardando there)


@dataclass
class Track:
    """One item of the development set, as a row of tracks.csv (paths relative to the set's folder or absolute)."""

    id: str
    kind: str  # "rendered" or "recorded" (what music_peers.py splits its summary by)
    audio: str
    beats: str
    chords: str  # "" when unknown
    duration_s: float
    split: str = ""  # "tune" | "report"
    category: str = ""  # "piano" (expressive piano), "ensemble", "band" (drums/band), "other"
    style: str = ""
    meter: int = 0  # beats per bar, 0 when unknown
    bpm: float = 0.0  # median tempo
    change_s: str = ""  # ";"-joined times (s) where the tempo steps or starts ramping
    source: str = ""


# ---------------------------------------------------------------- tempo maps: score quarters -> seconds

def tempo_map(length: float, bpm: float, rng: np.random.Generator, rubato: float,
              slow_at: list[float] = (), changes: list[tuple[float, float, float]] = ()) -> np.ndarray:
    """Seconds at every quarter 0..ceil(length): a base tempo with a slow drift, a random walk scaled by `rubato`
    (0 = metronomic, 0.1 = +-10 % wander), ritardandi before each quarter in `slow_at` (phrase ends) and tempo
    `changes` (start quarter, ramp quarters, factor; ramp 0 = a step)."""
    n = int(np.ceil(length)) + 1
    q = np.arange(n, dtype=float)
    log_tempo = np.full(n, np.log(bpm))
    if rubato > 0:
        drift = rubato * np.sin(2 * np.pi * q / rng.uniform(24, 64) + rng.uniform(0, 2 * np.pi))
        walk = np.cumsum(rng.normal(0, rubato / 3, n))
        walk -= np.convolve(walk, np.ones(9) / 9, mode="same")  # keep the wander local, not a trend
        log_tempo += drift + walk
        for end in slow_at:  # ritardando over the last 2 quarters of a phrase, strongest at its end
            k = (q > end - 2.5) & (q <= end)
            log_tempo[k] -= rubato * 2.5 * (1 - (end - q[k]) / 2.5)
    for start, ramp, factor in changes:
        frac = np.clip((q - start) / ramp, 0, 1) if ramp > 0 else (q >= start).astype(float)
        log_tempo += np.log(factor) * frac
    seconds_per_quarter = 60.0 / np.exp(log_tempo)
    return np.concatenate([[0.0], np.cumsum(seconds_per_quarter)])[:n]


def at(times: np.ndarray, q: np.ndarray | float) -> np.ndarray:
    """Seconds of score positions `q` (quarters) through a tempo map (linear within each quarter)."""
    return np.interp(q, np.arange(len(times)), times)


# ---------------------------------------------------------------- corpus pieces (music21)

HARTE = {"isMajorTriad": "maj", "isMinorTriad": "min", "isDiminishedTriad": "dim", "isAugmentedTriad": "aug",
         "isDominantSeventh": "7", "isDiminishedSeventh": "dim7", "isHalfDiminishedSeventh": "hdim7"}
ENSEMBLES = [  # one GM program per voice, top to bottom
    ("strings", [40, 40, 41, 42]), ("organ", [19, 19, 19, 19]), ("winds", [73, 68, 71, 70]),
    ("choir-organ", [52, 52, 52, 19]), ("harpsichord", [6, 6, 6, 6]), ("guitar-strings", [24, 40, 41, 42]),
]


def corpus_pieces() -> list[Path]:
    """music21 corpus pieces in simple meters that we render: the Bach chorales, then a few piano/quartet pieces."""
    from music21 import corpus

    chorales = sorted(p for p in corpus.getComposer("bach") if p.name.startswith("bwv"))
    others = corpus.getComposer("joplin") + corpus.getComposer("mozart")[:6] + corpus.getComposer("haydn")[:6]
    return chorales + sorted(others)


def _harte(chord) -> str | None:
    """Harte label of a music21 chord, or None when it is no triad/seventh we name."""
    for test, quality in HARTE.items():
        if getattr(chord, test)():
            return f"{chord.root().name.replace('-', 'b')}:{quality}"
    return None


def score_from_music21(path: Path, max_quarters: float) -> Score:
    """Notes, beats and per-beat chords of a corpus piece, cut at the last bar line within `max_quarters`.

    Raises ValueError for pieces we do not render: no x/4 meter, meter changes, or too short."""
    from music21 import corpus, expressions

    s = corpus.parse(str(path)).stripTies()
    signatures = {(ts.numerator, ts.denominator) for ts in s.recurse().getElementsByClass("TimeSignature")}
    if len(signatures) != 1 or next(iter(signatures))[1] != 4 or next(iter(signatures))[0] not in (2, 3, 4):
        raise ValueError(f"meter {signatures}")
    meter = next(iter(signatures))[0]
    measures = list(s.parts[0].getElementsByClass("Measure"))
    pickup = measures[0].paddingLeft if measures else 0.0
    bar_ends = [m.offset + m.barDuration.quarterLength - (pickup if i == 0 else 0) for i, m in enumerate(measures)]
    bar_ends = [e for e in bar_ends if e <= max_quarters]
    if not bar_ends or bar_ends[-1] < 8 * meter:
        raise ValueError("too short")
    length = bar_ends[-1]
    notes: list[Note] = []
    for voice, part in enumerate(s.parts):
        for n in part.flatten().notes:
            start = float(n.getOffsetInHierarchy(s))
            if start >= length:
                continue
            for p in n.pitches:
                notes.append(Note(start, min(start + float(n.quarterLength), length), p.midi, 80, voice))
    beats = [(float(q), int((q + pickup) % meter) + 1) for q in np.arange(0, length, 1.0)]
    chords: list[tuple[float, float, str]] = []
    slices = [(float(c.getOffsetInHierarchy(s)), c) for c in s.chordify().flatten().getElementsByClass("Chord")]
    label = "N"
    for q, _ in beats:  # the longest nameable chord sounding within the beat; else the previous beat's chord
        inside = sorted(((float(c.quarterLength), _harte(c)) for t, c in slices if q <= t < q + 1),
                        key=lambda x: -x[0])
        named = [lab for _, lab in inside if lab]
        label = named[0] if named else label
        if chords and chords[-1][2] == label:
            chords[-1] = (chords[-1][0], q + 1, label)
        else:
            chords.append((q, q + 1, label))
    fermatas = sorted({float(n.getOffsetInHierarchy(s) + n.quarterLength) for n in s.parts[0].flatten().notes
                       if any(isinstance(e, expressions.Fermata) for e in n.expressions)})
    return Score(notes, beats, chords, length, meter, [f for f in fermatas if f <= length] or bar_ends[3::4])


# ---------------------------------------------------------------- generated grooves

STYLES = {  # bpm range, meters, drum kit pattern name, bass program, chord programs
    "pop": ((60, 132), (4,), 33, (0, 4, 24, 48)),
    "rock": ((96, 176), (4,), 34, (29, 30, 27)),
    "dance": ((112, 200), (4,), 38, (81, 89, 90, 5)),
    "waltz": ((84, 200), (3,), 32, (0, 48, 21, 24)),
}
PROGRESSIONS = [[0, 5, 9, 7], [0, 7, 9, 5], [9, 5, 0, 7], [0, 9, 5, 7], [0, 5, 7, 5], [2, 7, 0, 0], [0, 3, 5, 7]]
KICK, SNARE, CLAP, HAT, OPEN_HAT, RIDE = 36, 38, 39, 42, 46, 51


def _drums(style: str, meter: int, bar: float, rng: np.random.Generator) -> list[Note]:
    """One bar of drums (quarters from the bar start)."""
    hits: list[tuple[float, int, int]] = []
    if style == "waltz":
        hits += [(0, KICK, 100), (1, HAT, 60), (2, HAT, 60)]
    elif style == "dance":
        hits += [(b, KICK, 110) for b in range(4)] + [(1, CLAP, 95), (3, CLAP, 95)]
        hits += [(b + 0.5, OPEN_HAT, 70) for b in range(4)]
    else:
        hits += [(0, KICK, 105), (2, KICK, 100), (1, SNARE, 100), (3, SNARE, 100)]
        if style == "rock" or rng.random() < 0.3:
            hits.append((2.5, KICK, 90))
        hits += [(b / 2, HAT if style == "pop" else RIDE, 70 if b % 2 == 0 else 55) for b in range(8)]
    return [Note(bar + t, bar + t + 0.25, p, int(np.clip(v + rng.normal(0, 6), 30, 127)), 0, True)
            for t, p, v in hits]


def score_groove(style: str, meter: int, bars: int, rng: np.random.Generator) -> Score:
    """Drums, bass and block chords over a four-chord progression in a random key (major or minor chords)."""
    key = int(rng.integers(0, 12))
    progression = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]
    _, _, bass_program, chord_programs = STYLES[style]
    chord_program = int(rng.choice(chord_programs))
    names = ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
    minor_degrees = {2, 4, 9}  # ii, iii, vi of the major key
    notes: list[Note] = []
    chords: list[tuple[float, float, str]] = []
    intro = int(rng.integers(0, 2))  # a bar of drums alone, sometimes
    for b in range(bars):
        start = float(b * meter)
        notes += _drums(style, meter, start, rng)
        if b < intro:
            chords.append((start, start + meter, "N"))
            continue
        degree = progression[(b - intro) % len(progression)]
        root = (key + degree) % 12
        minor = degree in minor_degrees
        chords.append((start, start + meter, f"{names[root]}:{'min' if minor else 'maj'}"))
        triad = [48 + root, 48 + root + (3 if minor else 4), 48 + root + 7]
        triad = [p + 12 if p < 55 else p for p in triad]
        for q in range(meter):
            if style == "waltz" and q == 0:
                notes.append(Note(start, start + 1, 36 + root, 95, bass_program))
                continue
            if style != "waltz" and q % 2 == 1 and rng.random() < 0.5:
                continue
            length = 1.0 if style == "waltz" else (0.9 if style == "dance" else 2.0 * 0.95)
            notes += [Note(start + q, start + q + length, p, 70, chord_program) for p in triad]
        if style != "waltz":
            for q in np.arange(0, meter, 0.5 if style in ("rock", "dance") else 1.0):
                pitch = 36 + root + (7 if style == "dance" and q % 1 else 0)
                notes.append(Note(start + q, start + q + 0.45, pitch, 90, bass_program))
    beats = [(float(q), int(q % meter) + 1) for q in range(bars * meter)]
    return Score(notes, beats, chords, float(bars * meter), meter)


# ---------------------------------------------------------------- rendering

def _midi(score: Score, times: np.ndarray, programs: list[int], jitter_s: float, rng: np.random.Generator,
          velocity_sd: float):
    """A pretty_midi.PrettyMIDI of the score on the tempo map, voices mapped to `programs`, timing humanised."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(resolution=960)
    instruments: dict[tuple[int, bool], pretty_midi.Instrument] = {}
    for n in score.notes:
        program = 0 if n.drum else programs[n.program % len(programs)] if programs else n.program
        inst = instruments.setdefault((program, n.drum), pretty_midi.Instrument(program, is_drum=n.drum))
        start = max(0.0, float(at(times, n.start)) + rng.normal(0, jitter_s))
        end = max(start + 0.05, float(at(times, n.end)) - 0.01)
        velocity = int(np.clip(n.velocity + rng.normal(0, velocity_sd), 20, 127))
        inst.notes.append(pretty_midi.Note(velocity, n.pitch, start, end))
    pm.instruments = list(instruments.values())
    return pm


def render_midi(pm, path: Path, rate: int = RATE) -> float:
    """Render a PrettyMIDI with fluidsynth to a FLAC at `rate` (peak -1 dBFS); returns its duration in s."""
    if shutil.which("fluidsynth") is None or not SOUNDFONT.is_file():
        raise RuntimeError("rendering needs fluidsynth and the GM soundfont: apt-get install fluidsynth "
                           "fluid-soundfont-gm")
    with tempfile.TemporaryDirectory() as tmp:
        mid, wav = Path(tmp) / "in.mid", Path(tmp) / "out.wav"
        pm.write(str(mid))
        subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.5", "-r", str(rate), "-F", str(wav), str(SOUNDFONT),
                        str(mid)], check=True, capture_output=True)
        audio, sr = sf.read(wav, dtype="float32")
    audio = audio.mean(axis=1) if audio.ndim == 2 else audio
    audio *= 0.89 / max(float(np.abs(audio).max()), 1e-6)
    sf.write(path, audio, sr, subtype="PCM_16")
    return len(audio) / sr


def _write_refs(track_id: str, out_dir: Path, score: Score, times: np.ndarray, duration: float) -> tuple[str, str]:
    beats = out_dir / f"{track_id}.beats"
    beats.write_text("".join(f"{at(times, q):.4f}\t{pos}\n" for q, pos in score.beats))
    lab = out_dir / f"{track_id}.lab"
    spans = [(float(at(times, a)), float(at(times, b)), label) for a, b, label in score.chords]
    spans[-1] = (spans[-1][0], duration, spans[-1][2])  # the last chord rings to the end of the audio
    if spans[0][0] > 0:
        spans.insert(0, (0.0, spans[0][0], "N"))
    lab.write_text("".join(f"{a:.4f}\t{b:.4f}\t{label}\n" for a, b, label in spans))
    return beats.name, lab.name


def _median_bpm(score: Score, times: np.ndarray) -> float:
    return round(60.0 / float(np.median(np.diff(at(times, np.array([q for q, _ in score.beats]))))), 1)


def render_corpus(path: Path, seed: int, out_dir: Path, piano: bool | None = None) -> Track:
    """Render one music21 corpus piece: piano with strong rubato (`piano`, by default half the seeds) or an
    ensemble with milder rubato, tempo 56-110 quarter notes per minute."""
    rng = np.random.default_rng(seed)
    piano = bool(rng.random() < 0.5) if piano is None else piano
    bpm = float(rng.uniform(56, 110))
    score = score_from_music21(path, MAX_SECONDS * bpm / 60 * 0.8)
    rubato = float(rng.uniform(0.08, 0.16) if piano else rng.uniform(0.02, 0.07))
    times = tempo_map(score.length, bpm, rng, rubato, score.phrase_ends)
    style, programs = ("piano", [0]) if piano else ENSEMBLES[int(rng.integers(len(ENSEMBLES)))]
    track_id = f"corpus-{path.stem.replace('.', '_')}-{seed}"
    pm = _midi(score, times, programs, 0.018 if piano else 0.01, rng, 14 if piano else 8)
    duration = render_midi(pm, out_dir / f"{track_id}.flac")
    beats, lab = _write_refs(track_id, out_dir, score, times, duration)
    return Track(track_id, "rendered", f"{track_id}.flac", beats, lab, round(duration, 3),
                 category="piano" if piano else "ensemble", style=f"corpus {style}", meter=score.meter,
                 bpm=_median_bpm(score, times), source=f"music21 corpus {path.parent.name}/{path.name}")


def render_groove(seed: int, out_dir: Path, style: str | None = None) -> Track:
    """Render one generated groove: a style, a tempo in its range, 30-60 s, and in 40 % of seeds a tempo step
    (x0.75-1.33 at a bar line) or a ramp over 2-6 bars."""
    rng = np.random.default_rng(seed)
    style = style or str(rng.choice(sorted(STYLES)))
    (lo, hi), meters, _, _ = STYLES[style]
    bpm = float(rng.uniform(lo, hi))
    meter = int(rng.choice(meters))
    bars = max(8, int(rng.uniform(30, MAX_SECONDS) * bpm / 60 / meter))
    score = score_groove(style, meter, bars, rng)
    changes: list[tuple[float, float, float]] = []
    if rng.random() < 0.4:
        bar = int(rng.integers(bars // 3, 2 * bars // 3))
        factor = float(np.clip(rng.choice([-1, 1]) * rng.uniform(0.12, 0.3) + 1, 60 / bpm, 200 / bpm))
        ramp = float(meter * int(rng.integers(2, 7))) if rng.random() < 0.5 else 0.0
        changes.append((float(bar * meter), ramp, factor))
    times = tempo_map(score.length, bpm, rng, 0.0, changes=changes)
    track_id = f"groove-{style}-{seed}"
    pm = _midi(score, times, [], 0.006, rng, 6)
    duration = render_midi(pm, out_dir / f"{track_id}.flac")
    beats, lab = _write_refs(track_id, out_dir, score, times, duration)
    return Track(track_id, "rendered", f"{track_id}.flac", beats, lab, round(duration, 3), category="band",
                 style=style, meter=meter, bpm=_median_bpm(score, times),
                 change_s=";".join(f"{at(times, q):.3f}" for q, _, _ in changes),
                 source=f"generated groove, seed {seed}")


# ---------------------------------------------------------------- the real recordings, splits, manifest

RECORDED_CATEGORY = {"piano": "piano", "pop": "band", "rock": "band", "drums": "band", "percussion": "band",
                     "candombe": "band", "samba": "band", "tango": "band"}


def recorded_tracks(data_dir: Path) -> list[Track]:
    """The real recordings of `$STREAM_DATA_DIR/music/` (absolute paths; nothing is copied)."""
    music = data_dir / "music"
    if not (music / "tracks.csv").is_file():
        return []
    tracks = []
    with open(music / "tracks.csv", newline="") as f:
        for row in csv.DictReader(f):
            style = row["style"]
            category = next((c for word, c in RECORDED_CATEGORY.items() if word in style.lower()), "other")
            chords = music / "chords" / f"{row['id']}.lab"
            tracks.append(Track(row["id"], "recorded", str(music / "audio" / f"{row['id']}.flac"),
                                str(music / "beats" / f"{row['id']}.beats"), str(chords) if chords.is_file() else "",
                                float(row["duration_s"]), category=category, style=style,
                                bpm=float(row["tempo_bpm"]), source=f"{row['dataset']}"))
    return tracks


def assign_splits(tracks: list[Track]) -> None:
    """tune / report, alternating within each (kind, category) in the order of a hash of the id: deterministic,
    balanced per category, and independent of the order tracks were made in."""
    groups: dict[tuple[str, str], list[Track]] = {}
    for t in tracks:
        groups.setdefault((t.kind, t.category), []).append(t)
    for group in groups.values():
        for i, t in enumerate(sorted(group, key=lambda t: hashlib.sha1(t.id.encode()).hexdigest())):
            t.split = "tune" if i % 2 == 0 else "report"


def write_manifest(tracks: list[Track], out_dir: Path) -> Path:
    path = out_dir / "tracks.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        for t in tracks:
            writer.writerow({k: v for k, v in asdict(t).items() if k in FIELDS})
    return path


def load_tracks(out_dir: Path, split: str | None = None) -> list[Track]:
    """Rows of `out_dir/tracks.csv` (paths made absolute), optionally of one split."""
    tracks = []
    with open(Path(out_dir) / "tracks.csv", newline="") as f:
        for row in csv.DictReader(f):
            for key in ("audio", "beats", "chords"):
                row[key] = str(Path(out_dir) / row[key]) if row[key] else ""
            row["duration_s"], row["bpm"], row["meter"] = float(row["duration_s"]), float(row["bpm"]), int(row["meter"])
            tracks.append(Track(**row))
    return [t for t in tracks if split is None or t.split == split]


def build_set(out_dir: Path, corpus: int, grooves: int, seed: int = 0, data_dir: Path | None = None) -> list[Track]:
    """Render `corpus` corpus pieces (Bach chorales first, every 5th a non-chorale when there are enough) and
    `grooves` grooves (styles in turn), list the real recordings, split all, write tracks.csv."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pieces = corpus_pieces()
    tracks: list[Track] = []
    order = list(rng.permutation(len(pieces)))
    while len([t for t in tracks if t.id.startswith("corpus-")]) < corpus and order:
        path = pieces[order.pop(0)]
        try:
            tracks.append(render_corpus(path, seed * 100003 + len(tracks), out_dir))
        except ValueError:
            continue
        print(f"{tracks[-1].id}: {tracks[-1].duration_s:.1f} s, {tracks[-1].bpm} bpm", file=sys.stderr)
    styles = sorted(STYLES)
    for i in range(grooves):
        tracks.append(render_groove(seed * 100003 + 50000 + i, out_dir, styles[i % len(styles)]))
        print(f"{tracks[-1].id}: {tracks[-1].duration_s:.1f} s, {tracks[-1].bpm} bpm", file=sys.stderr)
    tracks += recorded_tracks(data_dir or Path(os.environ.get("STREAM_DATA_DIR", "../shared/data")).resolve())
    assign_splits(tracks)
    write_manifest(tracks, out_dir)
    return tracks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for the FLACs, references and tracks.csv")
    parser.add_argument("--corpus", type=int, default=40, help="music21 corpus renders (default 40)")
    parser.add_argument("--grooves", type=int, default=40, help="generated grooves (default 40)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    tracks = build_set(args.out, args.corpus, args.grooves, args.seed)
    counts: dict[tuple[str, str], int] = {}
    for t in tracks:
        counts[(t.category, t.split)] = counts.get((t.category, t.split), 0) + 1
    print(f"{len(tracks)} tracks in {args.out / 'tracks.csv'}: "
          + ", ".join(f"{c}/{s} {n}" for (c, s), n in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
