"""`stream train-scene` on real clips: quiet rooms, music and speech from ../shared/data/sed/dev (linked, not copied)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from nodes.sed.scene import SceneClassifier, fit
from stream.cli import main
from stream.errors import ConfigError, ModelError

SCENES = ("room_background", "music", "speech")
PER_SCENE = 8


@pytest.fixture(scope="module")
def folder(data, tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    for scene in SCENES:
        (root / scene).mkdir()
        for clip in sorted((data / "sed" / "dev" / "clips" / scene).glob("*.flac"))[:PER_SCENE]:
            (root / scene / clip.name).symlink_to(clip)
    (root / "music" / "broken.wav").write_bytes(b"RIFF0000WAVE")  # named and skipped
    return root


def test_train_scene_separates_rooms_music_and_speech(folder, tmp_path, capsys):
    """Half of each scene's clips held out (seeded): 11 of 12 right when this was written; chance is 1/3."""
    out = tmp_path / "scenes.clf"
    assert main(["train-scene", "--data", str(folder), "--out", str(out), "--test-fraction", "0.5"]) == 0
    printed = capsys.readouterr()
    assert "broken.wav" in printed.err
    assert "clips: music 8, room_background 8, speech 8" in printed.out
    accuracy = float(re.search(r"held-out accuracy ([0-9.]+) \(12 clips", printed.out).group(1))
    assert accuracy >= 0.8
    classifier = SceneClassifier.load(out)
    assert classifier.labels == ("music", "room_background", "speech") and classifier.hop == 0.48


def test_bad_inputs_are_named(folder, tmp_path):
    assert main(["train-scene", "--data", str(folder / "music"), "--out", str(tmp_path / "x.npz")]) == 2
    with pytest.raises(ConfigError, match="two labels"):
        fit(np.zeros((3, 1024)), ["a", "a", "a"])
    (tmp_path / "bad.npz").write_bytes(b"not a classifier")
    with pytest.raises(ModelError, match="train-scene"):
        SceneClassifier.load(tmp_path / "bad.npz")
