"""Build the background bank `stream teach` calibrates against: nodes/sed/background.npz (shipped).

    python bench/sed_background.py [--size 768] [--out nodes/sed/background.npz]

A taught rule's threshold sits above what negative audio scores, and its counter-examples are what the sound must
be closer to than; without the user's `--negatives` those were generated noise alone, and a chime taught that way
fired ~600 times an hour on real room recordings (bench/RESULTS.md "Sound events: alerts"). The bank adds what a
home microphone hears besides the sound, from sources whose licences allow shipping derived data:
- speech: LibriSpeech test-other (CC BY 4.0, "LibriSpeech (c) 2014 by Vassil Panayotov"), one group per speaker;
  the SED benches use only train-clean-100, so no bench file is in the bank;
- meetings: the AMI excerpts (CC BY 4.0, AMI Meeting Corpus), one group;
- music: random multi-instrument pieces rendered here with fluidsynth and the FluidR3_GM soundfont (MIT), one
  group each: real music (bench/simulate_sed.py extra/music) is not shippable, and tonal music is what a taught
  chime confuses most;
- household near-misses rendered the same way: clapping (one to four clappers), applause, hand percussion, GM
  sound effects (sea, birds, helicopter, breath), one group each.
Each source file's YAMNet embeddings (the node's front end and model, patches every 0.16 s, gated below -60 dBFS)
are subsampled evenly to `--size` rows over the whole bank and stored as unit float16 rows with a group id per row.
Needs the `fluidsynth` binary and /usr/share/sounds/sf2/FluidR3_GM.sf2 (Debian: fluidsynth, fluid-soundfont-gm)
and mido; reads ../shared/data through STREAM_DATA_DIR.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

SF2 = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
RATE = 16000
LEADS = (0, 4, 6, 8, 9, 10, 11, 12, 13, 14, 19, 21, 22, 24, 25, 26, 40, 41, 56, 57, 60, 65, 68, 71, 73, 75, 80, 81,
         88, 98, 104, 108, 112)  # GM programs (0-based) for melodies: pianos, bells, organs, guitars, strings, winds
PADS = (0, 2, 4, 16, 19, 24, 32, 33, 42, 48, 49, 50, 52, 61, 89, 90, 95)
SCALES = ((0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10))
Note = tuple[float, int, int, int, float]  # start s, channel, note, velocity, duration s


def render(notes: list[Note], programs: dict[int, int], seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Mono 16 kHz audio of `notes` (channel 9 = GM drums) at a random level between -20 and -3 dBFS peak."""
    import mido

    mid = mido.MidiFile(ticks_per_beat=480)  # 120 bpm: 960 ticks per second
    track = mido.MidiTrack()
    mid.tracks.append(track)
    for channel, program in programs.items():
        track.append(mido.Message("program_change", program=program, channel=channel, time=0))
    events = sorted([(t, 1, c, n, v) for t, c, n, v, _ in notes] + [(t + d, 0, c, n, 0) for t, c, n, v, d in notes]
                    + [(seconds, 0, 0, 60, 0)])
    now = 0
    for t, on, channel, note, velocity in events:
        tick = round(t * 960)
        track.append(mido.Message("note_on" if on else "note_off", note=note, velocity=velocity, channel=channel,
                                  time=tick - now))
        now = tick
    with tempfile.TemporaryDirectory() as tmp:
        mid.save(Path(tmp) / "x.mid")
        subprocess.run(["fluidsynth", "-ni", "-q", "-r", str(RATE), "-g", "0.6", "-F", f"{tmp}/x.wav", str(SF2),
                        f"{tmp}/x.mid"], check=True)
        x, rate = sf.read(f"{tmp}/x.wav", always_2d=True)
    assert rate == RATE
    x = x.mean(1)
    return (x / (np.abs(x).max() + 1e-9) * 10 ** (rng.uniform(-20, -3) / 20)).astype(np.float32)


def piece(rng: np.random.Generator, seconds: float = 20.0) -> tuple[list[Note], dict[int, int]]:
    """A random piece: melody, chords, bass and drums (each layer present by chance) in a random key and tempo."""
    beat = 60 / rng.uniform(60, 160)
    key, scale = int(rng.integers(48, 60)), SCALES[int(rng.random() >= 0.6)]
    programs = {0: int(rng.choice(LEADS)), 1: int(rng.choice(PADS)), 2: int(rng.choice([32, 33, 34, 35, 38]))}
    melody, chords, bass, drums = rng.random(4) < (0.95, 0.8, 0.6, 0.6)
    notes: list[Note] = []
    t, degree = 0.3, 0
    while t < seconds - 1:
        if melody:
            degree = int(np.clip(degree + rng.integers(-3, 4), -3, 10))
            note = key + 12 + 12 * (degree // 7) + scale[degree % 7]
            notes.append((t, 0, note, int(rng.integers(60, 110)), 0.9 * beat * rng.choice([0.5, 1, 1, 2])))
        t += beat * rng.choice([0.5, 1, 1, 2])
    for bar in np.arange(0.3, seconds - 1, 4 * beat):
        root = int(rng.choice([0, 3, 4, 5]))
        chord = [key + scale[(root + k) % 7] + 12 * ((root + k) // 7) for k in (0, 2, 4)]
        if chords:
            notes += [(bar, 1, n, 60, 3.8 * beat) for n in chord]
        if bass:
            notes += [(bar + b * beat, 2, chord[0] - 12, 80, 0.8 * beat) for b in range(4)]
        if drums:
            for b in range(8):
                at = bar + b * beat / 2
                notes.append((at, 9, 42, 60, 0.05))
                if b % 4 in (0, 2):
                    notes.append((at, 9, 36 if b % 4 == 0 else 38, 100, 0.1))
    return notes, programs


def near_misses(rng: np.random.Generator, seconds: float = 30.0) -> Iterator[tuple[list[Note], dict[int, int]]]:
    """Clapping (1-4 clappers, bursts and pauses), applause, hand percussion and GM sound effects."""
    for clappers in (1, 2, 3, 4, 1, 2, 3, 4):
        notes, t, period = [], 0.5, rng.uniform(0.25, 0.6)
        while t < seconds - 2:
            burst = int(rng.integers(3, 20))
            for k in range(burst):
                notes += [(max(0.0, t + k * period + rng.normal(0, 0.02 * c)), 9, 39, int(rng.integers(60, 127)), 0.1)
                          for c in range(clappers)]
            t += burst * period + rng.uniform(0.5, 3.0)
        yield notes, {}
    for note in (54, 56, 75, 70):  # tambourine, cowbell, claves, maracas
        notes, t = [], 0.5
        while t < seconds - 2:
            notes.append((t, 9, note, int(rng.integers(50, 120)), 0.1))
            t += rng.choice([0.2, 0.25, 0.5, 1.0, 2.0])
        yield notes, {}
    for program in (126, 126, 122, 123, 125, 121):  # applause x2, seashore, bird tweet, helicopter, breath noise
        yield [(0.5 + 6 * k, 0, 60 + 2 * k, 100, rng.uniform(2, 5)) for k in range(5)], {0: program}


def sources(data: Path) -> Iterator[tuple[str, np.ndarray]]:
    """(group, mono 16 kHz audio) of every source file of the bank."""
    from nodes.sed.teach import read_audio

    for path in sorted((data / "speakers" / "librispeech" / "librispeech_test-other").rglob("*.flac")):
        yield f"librispeech:{path.parent.name}", read_audio(path)
    for path in sorted((data / "diarization" / "ami").glob("*.flac")):
        yield "ami", read_audio(path)
    rng = np.random.default_rng(1)
    for i in range(30):
        notes, programs = piece(rng)
        yield f"gm-music:{i}", render(notes, programs, 20.0, rng)
    for i, (notes, programs) in enumerate(near_misses(rng)):
        yield f"gm-near-miss:{i}", render(notes, programs, 30.0, rng)


def build(size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(unit embeddings [size, 1024] float16, group index per row, group names)."""
    from nodes.sed.teach import patch_embeddings, unit
    from nodes.sed.yamnet import load_yamnet
    from stream.paths import data_dir

    model = load_yamnet()
    rows: dict[str, list[np.ndarray]] = {}
    for group, x in sources(data_dir()):
        e, rms = patch_embeddings(model, x)
        keep = np.isfinite(rms) & (rms >= -60)
        rows.setdefault(group, []).append(unit(e[keep]))
    names = list(rows)
    embeddings = [np.concatenate(rows[g]) for g in names]
    total = sum(len(e) for e in embeddings)
    picked = [e[np.linspace(0, len(e) - 1, min(len(e), max(1, round(size * len(e) / total)))).round().astype(int)]
              for e in embeddings]
    groups = np.concatenate([np.full(len(p), i) for i, p in enumerate(picked)]).astype(np.int16)
    return np.concatenate(picked).astype(np.float16), groups, names


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=768, help="rows kept over the whole bank")
    p.add_argument("--out", type=Path, default=Path(__file__).parent.parent / "nodes" / "sed" / "background.npz")
    args = p.parse_args()
    embeddings, groups, names = build(args.size)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, embeddings=embeddings, groups=groups, names=np.array(names))
    print(f"{args.out}: {len(embeddings)} rows, {len(names)} groups")


if __name__ == "__main__":
    main()
