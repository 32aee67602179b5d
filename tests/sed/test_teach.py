"""`stream teach`: a custom rule from 3 examples of a generated two-tone chime, detected by `stream detect`.

Guards: the threshold sits above every held-out negative file (pure `calibrate` on made-up vectors);
the taught rule file loads like any other; a new chime in room noise raises exactly one alert of the taught rule
near its onset, and the same noise without it none; a bad name and a duplicate rule are ConfigErrors; the shipped
background bank is what bench/sed_background.py writes, and a chime taught without negatives stays quiet on a real
song thanks to it (without it, the same chime fired 6 times in the song's first 15 s: bench/RESULTS.md).
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from nodes.sed.teach import calibrate

RATE = 16000


def chime(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(round(1.6 * RATE)) / RATE
    x = np.zeros_like(t)
    for f0, at in ((659.3, 0.0), (523.3, 0.5)):
        tt = np.clip(t - at, 0, None)
        env = np.where(t >= at, np.exp(-tt / 0.7), 0.0)
        x += env * (np.sin(2 * np.pi * f0 * tt) + 0.3 * np.sin(2 * np.pi * 2.76 * f0 * tt))
    return (0.3 * x / np.abs(x).max() * 10 ** (rng.uniform(-6, 0) / 20)).astype(np.float32)


def noisy(x: np.ndarray, seed: int, lead: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pad = np.zeros(round(lead * RATE), np.float32)
    y = np.concatenate([pad, x, pad, pad])
    return (y + 0.003 * rng.standard_normal(len(y))).astype(np.float32)


def test_threshold_sits_above_every_held_out_negative_file():
    """Examples near axis 0; negative files near axes 1 and 2, and one (the 4th) close to the examples."""
    def rows(*vectors):
        v = np.array(vectors, np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    examples = [rows([1, 0.1, 0, 0]), rows([1, 0, 0.1, 0]), rows([1, 0, 0, 0.1])]
    negatives = [rows([0, 1, 0, 0]), rows([0.1, 1, 0, 0]), rows([0, 0, 1, 0]), rows([0.8, 0, 0, 0.6])]
    threshold, release, positives, maxima = calibrate(examples, negatives)
    # the 4th file, scored without its own counter-example, looks like the examples; the others do not
    assert np.argmax(maxima) == 3 and maxima[3] > 0.5 > np.sort(maxima)[-2]
    assert threshold == pytest.approx(maxima[3] + 0.05) and release == pytest.approx(threshold / 2)
    assert positives.min() > np.sort(maxima)[-2]


def test_teach_then_detect(yamnet, tmp_path, capsys):
    """The command's own model load is left out (it is `stream detect`'s); its checks run before it."""
    from nodes.sed.files import detect_file
    from nodes.sed.rules import load_rules
    from nodes.sed.teach import teach, write_rule
    from stream.cli import main

    examples = []
    for i in range(3):
        examples.append(tmp_path / f"ex{i}.wav")
        sf.write(examples[-1], noisy(chime(i), 10 + i, lead=0.3), RATE)
    rules = tmp_path / "mine" / "rules.toml"
    write_rule(rules, "my_bell", teach(yamnet, examples, []))  # what `stream teach` runs, on the session's model
    assert (tmp_path / "mine" / "my_bell.npz").exists()
    (rule,) = load_rules(rules, yamnet.class_names)
    assert rule.taught and rule.examples.shape[1] == 1024 and rule.counter.shape[1] == 1024

    test = tmp_path / "door.wav"
    sf.write(test, noisy(chime(7), 99, lead=2.0), RATE)
    alerts = detect_file(test, yamnet, [rule], tags_every=0).alerts()
    assert [r for _, _, r in alerts] == ["my_bell"] and abs(alerts[0][0] - 2.0) <= 0.6
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, noisy(np.zeros(RATE, np.float32), 98), RATE)
    assert detect_file(quiet, yamnet, [rule], tags_every=0).alerts() == []

    assert main(["teach", "my_bell", *map(str, examples), "--rules", str(rules)]) == 1
    assert "already has a rule 'my_bell'" in capsys.readouterr().err
    assert main(["teach", "My Bell!", *map(str, examples), "--rules", str(rules)]) == 1
    assert "use lower-case letters" in capsys.readouterr().err


def test_background_bank_is_the_built_one():
    from nodes.sed.teach import BANK, load_bank

    with np.load(BANK) as z:
        assert z["embeddings"].shape == (768, 1024) and z["embeddings"].dtype == np.float16
        names = [str(n) for n in z["names"]]
    assert {n.split(":")[0] for n in names} == {"librispeech", "ami", "gm-music", "gm-near-miss"}
    bank = load_bank()
    assert len(bank) == len(names) == 59 and sum(len(b) for b in bank) == 768
    assert np.allclose(np.linalg.norm(np.concatenate(bank), axis=1), 1.0, atol=1e-5)


def test_bank_keeps_a_chime_taught_without_negatives_quiet_on_music(yamnet, tmp_path, data):
    """Taught from 3 chimes and nothing else; the first 15 s of a real song (Yesterday: voice, guitar, strings)."""
    from nodes.capture.files import read_blocks
    from nodes.sed.files import detect_file
    from nodes.sed.rules import load_rules
    from nodes.sed.teach import teach, write_rule

    examples = []
    for i in range(3):
        examples.append(tmp_path / f"ex{i}.wav")
        sf.write(examples[-1], noisy(chime(i), 10 + i, lead=0.3), RATE)
    song = tmp_path / "song.wav"
    sf.write(song, np.concatenate(list(read_blocks(data / "music" / "audio" / "beatles_yesterday.flac", RATE)))[
        :15 * RATE], RATE)
    alerts = {}
    for name, bank in (("with_bank", None), ("without", [])):
        rules = tmp_path / name / "rules.toml"
        write_rule(rules, "my_bell", teach(yamnet, examples, [], bank))
        alerts[name] = len(detect_file(song, yamnet, load_rules(rules, yamnet.class_names), tags_every=0).alerts())
    assert alerts["with_bank"] == 0 and alerts["without"] >= 4, alerts
