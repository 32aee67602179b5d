"""Regenerate the PyanNet parity goldens in `golden/` from pyannote.audio's own PyTorch model.

Why goldens: pyannote.audio 3.3.2 imports torchaudio and Lightning at package import, which do not install
beside torch 2.13. Its model code itself needs only torch, einops and asteroid-filterbanks, so this script
loads `PyanNet.py` and `blocks/sincnet.py` from the installed package with the Lightning base class replaced
by a plain `nn.Module` (the forward pass is pyannote's, untouched) and the checkpoint read by
`stream.checkpoint` (no pickle of pyannote classes).

    pip install --no-deps --target /tmp/pyaref pyannote.audio==3.3.2 asteroid-filterbanks==0.4.0 einops
    PYTHONPATH=/tmp/pyaref .venv/bin/python tests/segmentation/make_golden.py

Writes golden/pyannet_<clip>_<start>s_<seconds>s.npy: [1, frames, 7] float32 powerset log-probabilities of the
AMI excerpt listed in CLIPS (read from STREAM_DATA_DIR, never copied here).
"""

from __future__ import annotations

import inspect
import sys
import types
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import nn

from stream.checkpoint import load_torch_checkpoint, state_dict
from stream.paths import data_dir, model_dir

GOLDEN = Path(__file__).parent / "golden"
CLIPS = (("dev00", 0.0, 10.0), ("trn09", 12.0, 10.0), ("trn08", 3.0, 5.0))  # (uri, start s, duration s)


def clip_audio(uri: str, start: float, seconds: float) -> np.ndarray:
    """[samples] float32 excerpt of an AMI clip (16 kHz)."""
    audio, rate = sf.read(data_dir() / "diarization" / "ami" / f"{uri}.flac", dtype="float32")
    first = int(round(start * rate))
    return audio[first : first + int(round(seconds * rate))]


def golden_path(uri: str, start: float, seconds: float) -> Path:
    return GOLDEN / f"pyannet_{uri}_{start:g}s_{seconds:g}s.npy"


class _LightningFreeModel(nn.Module):
    """Stands in for pyannote.audio.core.model.Model: just what PyanNet.__init__ uses."""

    def __init__(self, sample_rate: int = 16000, num_channels: int = 1, task: object = None) -> None:
        super().__init__()
        self.hparams = types.SimpleNamespace(sample_rate=sample_rate, num_channels=num_channels)

    def save_hyperparameters(self, *names: str) -> None:
        caller = inspect.currentframe().f_back.f_locals
        for name in names:
            setattr(self.hparams, name, caller[name])


def reference_pyannet() -> nn.Module:
    """pyannote.audio's PyanNet with segmentation-3.0's config and weights, in eval mode."""
    import pyannote  # the namespace package that holds pyannote.audio

    root = next(Path(p) / "audio" for p in pyannote.__path__ if (Path(p) / "audio" / "models").is_dir())
    for name, sub in (("pyannote.audio", ""), ("pyannote.audio.core", "core"), ("pyannote.audio.models", "models"),
                      ("pyannote.audio.models.segmentation", "models/segmentation")):
        package = types.ModuleType(name)
        package.__path__ = [str(root / sub)]
        sys.modules[name] = package
    sys.modules["pyannote.audio.core.model"] = types.SimpleNamespace(Model=_LightningFreeModel)
    sys.modules["pyannote.audio.core.task"] = types.SimpleNamespace(Task=object)
    from pyannote.audio.models.segmentation.PyanNet import PyanNet

    model = PyanNet(sincnet={"stride": 10}, lstm={"hidden_size": 128, "num_layers": 4, "bidirectional": True,
                    "monolithic": True}, linear={"hidden_size": 128, "num_layers": 2})
    model.classifier = nn.Linear(128, 7)
    model.activation = nn.LogSoftmax(dim=-1)  # pyannote's default activation for a powerset task
    sd = state_dict(load_torch_checkpoint(model_dir() / "segmentation-3.0" / "pytorch_model.bin"), "state_dict")
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in sd.items()}, strict=True)
    return model.eval()


def main() -> None:
    model = reference_pyannet()
    GOLDEN.mkdir(exist_ok=True)
    for clip in CLIPS:
        with torch.inference_mode():
            out = model(torch.from_numpy(clip_audio(*clip))[None, None]).numpy()
        np.save(golden_path(*clip), out.astype(np.float32))
        print(golden_path(*clip).name, out.shape)


if __name__ == "__main__":
    main()
