"""The i-vector extractor's sizes and EM schedule: a plain dataclass, so `stream train-ivector --help` shows the
defaults without importing JAX (model.py trains and extracts)."""

from __future__ import annotations

from dataclasses import dataclass

from stream.errors import ConfigError


@dataclass(frozen=True)
class IvectorConfig:
    """Sizes and EM schedule (defaults train in a few minutes on 2 CPU cores on ~1 h of speech)."""

    components: int = 128  # UBM Gaussians, a power of two (grown by splitting)
    rank: int = 100  # i-vector dimension (rows of T)
    lda_dim: int = 64  # after LDA
    ubm_iters_per_split: int = 4  # EM iterations after each split
    ubm_final_iters: int = 8  # EM iterations at full size
    ubm_frame_stride: int = 2  # UBM trained on every k-th frame
    tvm_iters: int = 10  # EM iterations of T
    segment_frames: int = 400  # voiced frames per training segment (T and LDA see segments, 4 s)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.components < 2 or self.components & (self.components - 1):
            raise ConfigError(f"components must be a power of two >= 2, got {self.components}")
        if min(self.rank, self.lda_dim, self.ubm_iters_per_split, self.tvm_iters, self.ubm_frame_stride,
               self.segment_frames) < 1 or self.ubm_final_iters < 0:
            raise ConfigError(f"i-vector sizes and iteration counts must be positive, got {self}")
