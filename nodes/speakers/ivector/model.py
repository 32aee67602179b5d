"""The trained i-vector extractor and its checkpoint.

    model = IvectorModel.load(path)      # a finished `stream train-ivector` checkpoint
    emb = model.embed(wave)              # 16 kHz audio -> unit [lda_dim]: LDA-projected, length-normalised i-vector

The checkpoint (.npz) holds `meta` (JSON: config, training stage and iteration, speakers and files trained on)
and the arrays it has so far: UBM `weights`, `means`, `variances`, then `t`, then `lda_mean`, `lda`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from nodes.speakers.ivector.config import IvectorConfig
from nodes.speakers.ivector.features import ivector_features
from nodes.speakers.ivector.stats import baum_welch
from nodes.speakers.ivector.tvm import extract
from nodes.speakers.ivector.ubm import DiagGmm
from stream.errors import ModelError
from stream.files import save_npz

FORMAT = 1


@dataclass
class Checkpoint:
    """A training run's state: what is trained so far and where the run is."""

    config: IvectorConfig
    files: list[str]  # training files, relative to the data folder: a resumed run must see the same ones
    stage: str = "ubm"  # "ubm" -> "tvm" -> "lda" -> "done"
    iteration: int = 0  # iterations done in the current stage
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        """Atomically (write a temporary file, then rename): a kill at any moment leaves the previous checkpoint."""
        meta = {"format": FORMAT, "config": asdict(self.config), "files": self.files, "stage": self.stage,
                "iteration": self.iteration}
        save_npz(path, meta, self.arrays)

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"i-vector checkpoint {path} does not exist; train one with `stream train-ivector`")
        try:
            with np.load(path) as data:
                meta = json.loads(str(data["meta"]))
                arrays = {k: data[k] for k in data.files if k != "meta"}
            config = IvectorConfig(**meta["config"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{path} is not a readable `stream train-ivector` checkpoint ({exc})") from exc
        if meta.get("format") != FORMAT:
            raise ModelError(f"{path} has checkpoint format {meta.get('format')!r}; this version reads {FORMAT}")
        return cls(config, list(meta["files"]), meta["stage"], int(meta["iteration"]), arrays)

    @property
    def gmm(self) -> DiagGmm:
        return DiagGmm(self.arrays["weights"], self.arrays["means"], self.arrays["variances"])


@dataclass(frozen=True)
class IvectorModel:
    """UBM + T + LDA: audio -> length-normalised LDA i-vector."""

    gmm: DiagGmm
    t: np.ndarray  # [C, D, R]
    lda_mean: np.ndarray  # [R]
    lda: np.ndarray  # [R, lda_dim]

    @classmethod
    def load(cls, path: Path) -> IvectorModel:
        ckpt = Checkpoint.load(path)
        if ckpt.stage != "done":
            raise ModelError(f"{path} is an unfinished training run (stage {ckpt.stage}, iteration "
                             f"{ckpt.iteration}); finish it with `stream train-ivector --resume`")
        return cls(ckpt.gmm, ckpt.arrays["t"], ckpt.arrays["lda_mean"], ckpt.arrays["lda"])

    def ivectors(self, features: list[np.ndarray]) -> np.ndarray:
        """Raw i-vectors [U, R] of feature arrays [T_i, 60] (`features.ivector_features`)."""
        stats = [baum_welch(self.gmm, f) for f in features]
        return extract(self.t, np.stack([s[0] for s in stats]), np.stack([s[1] for s in stats]))

    def project(self, ivectors: np.ndarray) -> np.ndarray:
        """LDA + length normalisation: [U, R] -> unit [U, lda_dim]."""
        y = (ivectors - self.lda_mean) @ self.lda
        return y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)

    def embed(self, wave: np.ndarray, what: str = "audio") -> np.ndarray:
        """16 kHz waveform in [-1, 1] -> unit embedding [lda_dim]."""
        return self.project(self.ivectors([ivector_features(wave, what)]))[0]
