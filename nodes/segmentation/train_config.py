"""What `stream train-segmentation` trains with: plain dataclasses, so the command line can show their defaults
without importing JAX (finetune.py trains, chunks.py draws the augmented chunks)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from stream.errors import ConfigError


@dataclass(frozen=True)
class Augmentation:
    """Probabilities and ranges of each augmentation (0 disables one)."""

    reverb: float = 0.3  # [0, 1] chance of a synthetic room response
    rt60: tuple[float, float] = (0.2, 0.8)  # s
    noise: float = 0.5  # [0, 1] chance of added coloured noise
    snr_db: tuple[float, float] = (5.0, 30.0)
    level_db: tuple[float, float] = (-20.0, 6.0)  # gain applied to every chunk


@dataclass(frozen=True)
class TrainConfig:
    """How to fine-tune (defaults: a few hundred steps on the simulated tune meetings, bench/RESULTS.md)."""

    steps: int = 600  # total Adam steps
    batch: int = 8  # chunks per step
    chunk_s: float = 8.0  # s per chunk (the diarisation window)
    lr: float = 1e-4  # peak learning rate (low: fine-tuning, not training from scratch)
    checkpoint_every: int = 25  # steps
    seed: int = 0
    augmentation: Augmentation = field(default_factory=Augmentation)

    def __post_init__(self) -> None:
        if min(self.steps, self.batch, self.checkpoint_every) < 1:
            raise ConfigError(f"steps, batch and checkpoint_every must be >= 1, got {self}")
        if not 1.0 <= self.chunk_s <= 10.0:
            raise ConfigError(f"chunk_s must be in [1, 10] s (the model was trained on 10 s), got {self.chunk_s}")
        if not 0 < self.lr < 0.1:
            raise ConfigError(f"lr must be in (0, 0.1), got {self.lr}")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TrainConfig:
        aug = d.get("augmentation", {})
        aug = Augmentation(**{k: tuple(v) if isinstance(v, list) else v for k, v in aug.items()})
        return cls(**{**d, "augmentation": aug})
