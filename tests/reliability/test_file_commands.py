"""Issue #22, bugs 1, 2, 6 (`stream embed`), 8 and 9 (files): file-mode commands never lose a file silently.

Most checks happen before any model is loaded, so they run in about a second each; one `stream diarize` run
(~15 s) covers a per-file write error next to a missing path and a good file. Each test failed on main.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from nodes.capture.files import open_audio
from nodes.embedding.api import bucket_batch, bucket_frames
from nodes.speakers.store import SpeakerStore
from stream.errors import AudioError, ConfigError
from stream.cli import main
from stream.paths import REPO_ROOT
from stream.rttm import Turn, read_rttm, write_rttm
from stream.sinks.mqtt import MqttConfig, endpoint


def _stream(capsys, *args: str) -> tuple[int, str]:
    """(exit code, stderr) of `stream ARGS` run in this process (the command line's own entry point)."""
    code = main(list(args))
    return code, capsys.readouterr().err


@pytest.fixture
def speech(tmp_path, data) -> Path:
    """5 s of AMI meeting speech (two speakers)."""
    x, sr = sf.read(str(data / "diarization" / "ami" / "trn00.flac"), frames=16000 * 5, start=16000 * 10)
    path = tmp_path / "in" / "talk.flac"
    path.parent.mkdir()
    sf.write(str(path), x, sr)
    return path


def test_bug1_same_stem_inputs_are_refused_before_any_work(tmp_path, speech, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for copy in (tmp_path / "a" / "x.flac", tmp_path / "b" / "x.flac", tmp_path / "a" / "x.wav"):
        copy.write_bytes(speech.read_bytes())
    code, err = _stream(capsys, "diarize", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "out"))
    assert code == 1
    assert "x <- " in err and "a/x.flac" in err and "b/x.flac" in err and "a/x.wav" in err
    assert not (tmp_path / "out").exists()  # refused before anything was made


def test_bug8_out_that_is_a_file_fails_at_once(tmp_path, speech, capsys):
    (tmp_path / "file").write_text("")
    code, err = _stream(capsys, "diarize", str(speech), "--out", str(tmp_path / "file"))
    assert code == 1 and "--out" in err and "cannot write" in err


def test_bug8_bug9_write_error_and_missing_path_are_per_file(tmp_path, speech, capsys):
    """One `stream diarize` run: a missing path, a file whose RTTM cannot be written, and a good file."""
    other = speech.with_name("other.flac")
    other.write_bytes(speech.read_bytes())
    out = tmp_path / "out"
    (out / "talk.rttm").mkdir(parents=True)  # a folder where talk.rttm should go: writing it fails
    code, err = _stream(capsys, "diarize", str(tmp_path / "missing.flac"), str(speech), str(other), "--out", str(out))
    assert code == 1
    assert "missing.flac: error: no such file or folder" in err
    assert "talk.flac: error: cannot write" in err
    assert len(read_rttm(out / "other.rttm")["other"]) >= 1  # the good file is written and has its speech
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary left behind

    (out / "talk.rttm").rmdir()
    (out / "talk.rttm").write_text("SPEAKER talk 1 0.000 1.000 <NA> <NA> A <NA> <NA>\n")
    code, err = _stream(capsys, "diarize", str(speech), str(other), "--out", str(out), "--skip-existing")
    assert code == 0 and "skipping 2 files" in err  # nothing redone


@pytest.fixture
def full_disk(tmp_path) -> Path:
    """A real 64 kB file system, filled: every write to it fails with ENOSPC (needs mount; skipped otherwise)."""
    mount = tmp_path / "full"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (not root, or no mount namespace): no full disk to test on")
    try:
        with contextlib.suppress(OSError), open(mount / "filler", "wb") as f:
            f.write(b"\0" * 128 * 1024)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_bug8_full_disk_leaves_no_partial_rttm(full_disk):
    turns = [Turn(0.0, 1.0 + i, f"S{i}") for i in range(2000)]
    with pytest.raises(OSError):
        write_rttm(full_disk / "x.rttm", "x", turns)
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]  # no 0-byte x.rttm, no temporary


def test_bug6_embed_checks_out_before_compute(tmp_path, speech, capsys):
    (tmp_path / "file").write_text("")
    code, err = _stream(capsys, "embed", str(speech), "--out", str(tmp_path / "file" / "e.npz"))
    assert code == 1 and "cannot write" in err
    code, err = _stream(capsys, "embed", str(speech), "--out", str(tmp_path))
    assert code == 1 and "is a folder" in err


def test_bug6_embed_batches_never_pad_a_short_file_to_a_long_one():
    from nodes.embedding.api import length_batches  # new: the batch plan of `stream embed`

    lengths = [3000] * 11 + [60_000, 50, 140, 2900]  # eleven 30 s files, one 10 min file, short ones
    batches = length_batches(lengths, batch_size=8)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for rows in batches:
        sizes = {bucket_frames(lengths[i]) for i in rows}
        assert len(sizes) == 1  # one length bucket per batch
        assert len(rows) == 1 or bucket_batch(len(rows)) * sizes.pop() <= 8 * 3000
    assert [11] in batches  # the 10-minute file is alone


@pytest.mark.parametrize("name", ["allow_pickle", "file"])
def test_bug2_speaker_names_that_are_savez_parameters(tmp_path, name):
    store = SpeakerStore.open(tmp_path / "db", "campplus", 4, create=True)  # what `stream enroll` does
    store.enrol(name, np.ones((2, 4), np.float32), ["a.flac", "b.flac"])
    store.save()
    assert SpeakerStore.open(tmp_path / "db").speakers[name].shape == (2, 4)


ENROL = """
import sys
import numpy as np
from nodes.speakers.store import SpeakerStore
with SpeakerStore.edit(sys.argv[1], "campplus", 4, create=True) as store:
    store.enrol(sys.argv[2], np.ones((1, 4), np.float32), ["x.flac"])
"""


def test_bug2_concurrent_enrolments_all_land(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", ENROL, str(tmp_path / "db"), f"speaker{i}"], env=env)
             for i in range(6)]
    assert [p.wait(60) for p in procs] == [0] * 6
    assert sorted(SpeakerStore.open(tmp_path / "db").speakers) == [f"speaker{i}" for i in range(6)]


def test_bug2_truncated_store_is_a_clear_error(tmp_path):
    store = SpeakerStore.open(tmp_path / "db", "campplus", 4, create=True)
    store.enrol("alice", np.ones((1, 4), np.float32), ["a.flac"])
    store.save()
    npz = tmp_path / "db" / "embeddings.npz"
    npz.write_bytes(npz.read_bytes()[:40])
    with pytest.raises(ConfigError, match="incomplete or corrupt"):
        SpeakerStore.open(tmp_path / "db")


def test_bug9_rttm_uri_with_spaces_reads_back(tmp_path):
    write_rttm(tmp_path / "my talk.rttm", "my talk", [Turn(0.0, 1.5, "A")])
    assert read_rttm(tmp_path / "my talk.rttm") == {"my_talk": [Turn(0.0, 1.5, "A")]}


def test_bug9_truncated_wav_is_an_error(tmp_path):
    sf.write(str(tmp_path / "full.wav"), np.zeros(16000 * 30, np.float32), 16000, subtype="PCM_16")
    raw = (tmp_path / "full.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(raw[: len(raw) // 10])
    with pytest.raises(AudioError, match=r"truncated: its header announces 30.0 s of audio, only 3.0 s"):
        open_audio(tmp_path / "cut.wav")


NOBODY = """
import os
import sys
from pathlib import Path
from nodes.capture.files import find_audio, open_audio
from stream.errors import AudioError
os.setgid(65534)
os.setuid(65534)  # nobody, after the imports (the interpreter lives under /root)
try:
    open_audio(Path(sys.argv[1]))
except AudioError as exc:
    print(exc)
print(find_audio([Path(sys.argv[2])])[1])
"""


def test_bug9_unreadable_file_and_folder_are_named(speech):
    if os.geteuid() != 0:
        pytest.skip("needs root to run the check as another user (root reads everything)")
    with tempfile.TemporaryDirectory() as shared:  # pytest's tmp_path is under a 0700 folder nobody cannot enter
        root = Path(shared)
        root.chmod(0o755)
        secret = root / "secret.flac"
        secret.write_bytes(speech.read_bytes())
        secret.chmod(0o000)
        (root / "tree" / "locked").mkdir(parents=True)
        (root / "tree" / "locked").chmod(0o000)
        out = subprocess.run([sys.executable, "-c", NOBODY, str(secret), str(root / "tree")], capture_output=True,
                             text=True, env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)), timeout=60)
    assert "cannot read the file (Permission denied)" in out.stdout, out.stderr
    assert "tree/locked" in out.stdout and "cannot read this folder (Permission denied)" in out.stdout


def test_bug9_missing_path_does_not_stop_the_batch(tmp_path, speech):
    from nodes.capture.files import find_audio  # new: the batch commands' input search

    files, problems = find_audio([tmp_path / "nope.wav", speech.parent])
    assert files == [speech] and problems == [(tmp_path / "nope.wav", "no such file or folder")]


def test_bug9_eval_der_says_what_it_did_not_score_and_cleans_up(tmp_path, capsys, monkeypatch):
    (tmp_path / "ref.rttm").write_text("SPEAKER a 1 0 1 <NA> <NA> X <NA> <NA>\nSPEAKER b 1 0 1 <NA> <NA> Y <NA> <NA>\n")
    (tmp_path / "hyp").mkdir()
    (tmp_path / "hyp" / "a.rttm").write_text("SPEAKER a 1 0 1 <NA> <NA> S <NA> <NA>\n")
    code, err = _stream(capsys, "eval", "der", str(tmp_path / "hyp"), "--reference", str(tmp_path / "ref.rttm"))
    assert code == 0 and "1 of 2 reference files scored; no hypothesis for b" in err
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    _stream(capsys, "eval", "der", "--audio", str(tmp_path / "none.flac"), "--reference", str(tmp_path / "ref.rttm"))
    assert list(scratch.iterdir()) == []  # no stream-der-* folder left behind


def test_bug9_malformed_mqtt_url_never_shows_the_password():
    for url in ("mqtt://user:hunter2@host:99999", "ftp://user:hunter2@host", "mqtt://user:hunter2@[::1"):
        with pytest.raises(ConfigError) as caught:
            endpoint(MqttConfig(url=url))
        assert "hunter2" not in str(caught.value)
