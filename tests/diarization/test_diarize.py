"""`stream diarize` end to end on the AMI clips (online and refined DER), a stereo 44.1 kHz copy, bad inputs.

One `stream diarize --refine` run over the 12 AMI clips, a resampled stereo copy of one of them and a batch of
broken files: the same invocation a user would make on a folder with a few bad recordings in it.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
import soxr

from nodes.diarization.evaluate import score
from stream.rttm import read_rttm, read_uem

# Pooled over the 12 clips, no collar, overlap scored, UEM applied (bench/RESULTS.md has the measured values).
ONLINE_DER_MAX = 35.0  # % (measured 31.4 with the calibrated new-speaker rule and tail embeddings, issue 18)
REFINED_DER_MAX = 30.0  # % (measured 28.5: "auto" keeps the online speakers on 4 clips where AHC merges every
#   voice, 30.4 with AHC alone, issue 18)
STEREO_CLIP = "trn06"  # per-clip DER of these 30 s clips can move by several points under a 48 dB SNR
#   perturbation such as this resampling (dev00: 39.5 vs 37.6, trn03 5.1 vs 9.8; bench/RESULTS.md, "Diarisation")
BAD = {  # file name -> what the error line must say
    "truncated.flac": "truncated or corrupt",
    "empty.wav": "no samples",
    "text.wav": "cannot decode audio",
    "nans.wav": "NaN",
}


@pytest.fixture(scope="module")
def run(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("diarize")
    ami = data / "diarization" / "ami"
    extra = tmp / "extra"
    extra.mkdir()
    wave, rate = sf.read(ami / f"{STEREO_CLIP}.flac", dtype="float32")
    wave44 = soxr.resample(wave, rate, 44100)
    sf.write(extra / "stereo44k.wav", np.stack([wave44, 0.8 * wave44], axis=1), 44100, subtype="PCM_16")
    sf.write(extra / "phone8k.wav", soxr.resample(wave, rate, 8000), 8000, subtype="PCM_16")
    flac = (ami / "trn02.flac").read_bytes()
    (extra / "truncated.flac").write_bytes(flac[: len(flac) * 4 // 10])
    sf.write(extra / "empty.wav", np.zeros(0, np.float32), 16000)
    (extra / "text.wav").write_text("this is not audio\n" * 20)
    sf.write(extra / "nans.wav", np.full(3 * 16000, np.nan, np.float32), 16000, subtype="FLOAT")
    out = tmp / "out"
    proc = subprocess.run([sys.executable, "-m", "stream.cli", "diarize", str(ami), str(extra), "--out", str(out),
                           "--refine"], capture_output=True, text=True, timeout=900)
    return proc, out, ami


def test_ami_der_online_and_refined(run):
    proc, out, ami = run
    references, uems = read_rttm(ami / "reference.rttm"), read_uem(ami / "reference.uem")
    online = {u: read_rttm(out / f"{u}.rttm").get(u, []) for u in references}
    refined = {u: read_rttm(out / f"{u}.refined.rttm").get(u, []) for u in references}
    assert score(references, online, uems)[-1].der <= ONLINE_DER_MAX
    assert score(references, refined, uems)[-1].der <= REFINED_DER_MAX


def test_stereo_44k_copy_scores_like_the_original(run):
    proc, out, ami = run
    references, uems = read_rttm(ami / "reference.rttm"), read_uem(ami / "reference.uem")
    ref = {STEREO_CLIP: references[STEREO_CLIP]}
    original = score(ref, read_rttm(out / f"{STEREO_CLIP}.rttm"), uems)[-1].der
    copy = read_rttm(out / "stereo44k.rttm")["stereo44k"]
    assert abs(score(ref, {STEREO_CLIP: copy}, uems)[-1].der - original) <= 2.0  # measured 1.4 (was 0.x)


def test_bad_inputs_one_line_each_and_the_rest_completes(run):
    proc, out, ami = run
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if ": error: " in line]
    assert len(errors) == len(BAD), proc.stderr
    for name, reason in BAD.items():
        assert sum(name in line and reason in line for line in errors) == 1, (name, proc.stderr)
    assert any("phone8k.wav: note: 8000 Hz" in line for line in proc.stderr.splitlines())
    done = sorted(p.name for p in out.glob("*.rttm") if not p.name.endswith(".refined.rttm"))
    assert done == sorted([f"{p.stem}.rttm" for p in ami.glob("*.flac")] + ["phone8k.rttm", "stereo44k.rttm"])
    summaries = [line for line in proc.stdout.splitlines() if re.search(r" speakers?, ", line) and "RTF" in line]
    assert len(summaries) == 14
    assert not re.search(r"\b1 speakers\b", proc.stdout)  # trn02 has one speaker (issue #21: "1 speakers")


def test_interrupt_stops_the_batch(tmp_path, data):
    """Ctrl-C (SIGINT) ends the files in flight at their next block and skips the rest: exit 130, no more RTTMs."""
    clips = sorted((data / "diarization" / "ami").glob("*.flac"))
    long = tmp_path / "in" / "long.flac"  # 6 minutes: the clips one after another
    long.parent.mkdir()
    sf.write(long, np.concatenate([sf.read(c, dtype="float32")[0] for c in clips]), 16000)
    for i in range(1, 6):
        (tmp_path / "in" / f"long{i}.flac").symlink_to(long)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "stream.cli", "diarize", str(tmp_path / "in"), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not out.exists() and time.monotonic() < deadline:  # the output folder appears once the models are loaded
        time.sleep(0.2)
    time.sleep(2.0)
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert len(list(out.glob("*.rttm"))) < 6 and not re.search(r" speakers?, ", stdout)
