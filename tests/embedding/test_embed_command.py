"""`stream embed`: any rate/channels, folders, input order, and one clear line per bad file."""

from __future__ import annotations

import numpy as np
import soundfile as sf
import soxr

from nodes.speakers.scoring import cosine
from stream.cli import main


def test_embed_files_and_folders(tmp_path, waves, capsys):
    wave = waves[0]  # 3.5 s, 16 kHz
    folder = tmp_path / "in"
    folder.mkdir()
    stereo = soxr.resample(wave, 16000, 44100)
    sf.write(folder / "b_stereo44k.flac", np.stack([stereo, 0.5 * stereo], axis=1), 44100)
    sf.write(folder / "c_short.wav", wave[:1600], 16000)  # 0.1 s
    (folder / "d_corrupt.wav").write_bytes(b"RIFF" + bytes(range(200)))
    sf.write(folder / "a_8k.wav", soxr.resample(waves[1], 16000, 8000), 8000)
    plain = tmp_path / "plain.wav"
    sf.write(plain, wave, 16000)
    out = tmp_path / "emb.npz"

    code = main(["embed", str(plain), str(folder), "--out", str(out)])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 2
    assert "c_short.wav" in err[0] and "too short" in err[0]
    assert "d_corrupt.wav" in err[1] and "cannot decode" in err[1]
    with np.load(out) as data:
        paths, emb = list(data["paths"]), data["embeddings"]
    assert [p.split("/")[-1] for p in paths] == ["plain.wav", "a_8k.wav", "b_stereo44k.flac"]
    assert emb.shape == (3, 192) and np.isfinite(emb).all()
    sims = cosine(emb, emb)
    assert sims[0, 2] >= 0.97  # same audio via 44.1 kHz stereo (down-mix + resample)
    assert sims[0, 1] <= 0.6  # another speaker
