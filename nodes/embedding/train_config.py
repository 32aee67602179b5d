"""What `stream train-embedding` trains: plain values, so the command line can list the networks and show the
defaults without importing JAX (train.py trains)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from stream.errors import ConfigError

NETWORKS = ("xvector", "dvector")  # trainable embedding networks, in train.ARCHITECTURES' order


@dataclass(frozen=True)
class TrainConfig:
    """How to train (defaults: a few minutes on one CPU core for the small networks)."""

    steps: int = 500  # more overfits the 251 one-utterance classes of train-clean-100 (bench/RESULTS.md)
    batch: int = 64  # crops per step
    crop_frames: int = 160  # frames per crop (1.6 s, the d-vector window); shorter files are repeated to fill it
    lr: float = 2e-3  # peak learning rate (AdamW), after a linear warm-up, then cosine decay to 1 %
    warmup: int = 100  # steps of learning-rate warm-up
    weight_decay: float = 1e-4
    margin: float = 0.2  # AAM margin m, radians
    scale: float = 30.0  # AAM scale s
    margin_warmup: int = 300  # steps over which the margin ramps from 0 to `margin`
    seed: int = 0
    checkpoint_every: int = 250  # steps

    def __post_init__(self) -> None:
        if min(self.steps, self.batch, self.crop_frames, self.checkpoint_every) < 1:
            raise ConfigError(f"steps, batch, crop_frames and checkpoint_every must be >= 1, got {self}")
        if not 0 <= self.margin < math.pi / 2 or self.scale <= 0 or self.lr <= 0:
            raise ConfigError(f"need 0 <= margin < pi/2, scale > 0 and lr > 0, got {self}")
