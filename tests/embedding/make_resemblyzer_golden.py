"""Write golden/resemblyzer_mel.npy: librosa's mel power spectrogram (Resemblyzer's `wav_to_mel_spectrogram`
settings) of the first second of a LibriSpeech test-other clip. Needs librosa, which the project does not depend
on: run it from a throwaway environment with librosa, numpy and soundfile installed:

    python tests/embedding/make_resemblyzer_golden.py ../shared/data
"""

from __future__ import annotations

import sys
from pathlib import Path

import librosa
import numpy as np
import soundfile

CLIP = "speakers/librispeech/librispeech_test-other/1688/1688-142285-0000.flac"


def main() -> None:
    wave, rate = soundfile.read(Path(sys.argv[1]) / CLIP, dtype="float32")
    assert rate == 16000
    mel = librosa.feature.melspectrogram(y=wave[:16000], sr=16000, n_fft=400, hop_length=160, n_mels=40)
    out = Path(__file__).parent / "golden" / "resemblyzer_mel.npy"
    np.save(out, mel.astype(np.float32).T)
    print(f"{out}: {mel.T.shape} with librosa {librosa.__version__}")


if __name__ == "__main__":
    main()
