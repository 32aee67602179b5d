"""The enrolment store: named speakers' embeddings on disk, the cohort and the calibrated threshold.

A store is a folder, readable without this code:

    DB/store.json       {"format": 1, "model": "campplus", "dim": 192,
                         "speakers": {"alice": ["alice1.flac", ...]},      # audio each embedding came from
                         "cohort": ["c1.flac", ...] | null,              # s-norm cohort audio
                         "threshold": {"value": 2.1, "method": "far", ...} | null}
    DB/embeddings.npz   one array per speaker name: [n_utterances, dim] float32, raw (not normalised)
    DB/cohort.npy       [n_cohort, dim] float32, present when a cohort was set
    DB/plda.npz         the PLDA scoring model (`nodes.speakers.plda.Plda` fields), present when one was fitted

Embeddings only compare within one model, so a store records the model that made them and refuses any other.
Other parts (the diariser pre-seeding its clusters) read `SpeakerStore.open(db, model).centroids()`.

Changes go through `SpeakerStore.edit(db)`: it holds an exclusive lock (`DB/.lock`, fcntl) from reading the store
to saving it, so two `stream enroll` at once both land; every file is replaced atomically (written beside, fsynced,
renamed) and store.json last, so a crash or a full disk leaves the previous store readable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from nodes.speakers.calibration import Threshold
from nodes.speakers.plda import Plda
from nodes.speakers.scoring import centroid
from stream.errors import ConfigError, ModelError
from stream.files import atomic_write

FORMAT = 1
_NAME = re.compile(r"^[\w][\w.\-]*$")


class SpeakerStore:
    """Enrolled speakers of one embedding model. Change it with `enrol`/`set_cohort`/`set_threshold`, then `save`."""

    def __init__(self, path: Path, model: str, dim: int) -> None:
        self.path = Path(path)
        self.model = model
        self.dim = dim
        self.speakers: dict[str, np.ndarray] = {}  # name -> [n, dim]
        self.sources: dict[str, list[str]] = {}  # name -> audio each embedding came from
        self.cohort: np.ndarray | None = None  # [C, dim]
        self.cohort_sources: list[str] = []
        self.threshold: Threshold | None = None
        self.plda: Plda | None = None  # scores are PLDA log-likelihood ratios when set (instead of cosine/s-norm)

    @classmethod
    def open(cls, path: Path, model: str | None = None, dim: int | None = None, create: bool = False) -> SpeakerStore:
        """Open the store at `path` for embeddings of `model` (None: whichever model made it); with `create`, start
        an empty one if none exists.

        Raises ModelError if the store was made with another model (its embeddings would be meaningless here).
        """
        path = Path(path)
        meta_path = path / "store.json"
        if not meta_path.is_file():
            if not create:
                raise ConfigError(
                    f"no enrolment store at {path}: enrol a speaker first (`stream enroll NAME AUDIO --db {path}`)"
                )
            if model is None or dim is None:
                raise ConfigError("creating a store needs the embedding model and its dimension")
            return cls(path, model, dim)
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("format") != FORMAT:
                raise ConfigError(f"{meta_path} has format {meta.get('format')!r}; this version reads format {FORMAT}")
            store = cls(path, meta["model"], int(meta["dim"]))
            if (model is not None and store.model != model) or (dim is not None and dim != store.dim):
                wanted = f"{model} embeddings" + (f" ({dim}-d)" if dim is not None else "")
                raise ModelError(
                    f"enrolment store {path} holds {store.model} embeddings ({store.dim}-d) and cannot score "
                    f"{wanted}: pass --model {store.model}, or use another --db for {model}"
                )
            with np.load(path / "embeddings.npz") as data:
                for name, files in meta["speakers"].items():
                    store.speakers[name] = data[name]
                    store.sources[name] = list(files)
            if meta.get("cohort"):
                store.cohort = np.load(path / "cohort.npy")
                store.cohort_sources = list(meta["cohort"])
            if meta.get("plda"):
                with np.load(path / "plda.npz") as data:
                    store.plda = Plda(**{k: data[k].astype(np.float64) for k in data.files})
            if meta.get("threshold"):
                store.threshold = Threshold(**meta["threshold"])
        except (OSError, KeyError, TypeError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # JSON: ValueError
            raise ConfigError(
                f"enrolment store {path} is incomplete or corrupt ({exc!r}); re-create it with `stream enroll`"
            ) from exc
        return store

    @classmethod
    @contextlib.contextmanager
    def edit(cls, path: Path, model: str | None = None, dim: int | None = None,
             create: bool = False) -> Iterator[SpeakerStore]:
        """`open` under the store's exclusive lock, yield it for changes, `save` when the block ends cleanly."""
        path = Path(path)
        if create:
            path.mkdir(parents=True, exist_ok=True)
        elif not path.is_dir():
            cls.open(path, model, dim)  # raises its "no enrolment store" error
        try:
            lock = open(path / ".lock", "a")  # noqa: SIM115 - closed below, after the lock is released
        except OSError as exc:
            raise ConfigError(f"cannot lock the enrolment store {path} ({exc.strerror})") from None
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            store = cls.open(path, model, dim, create)
            yield store
            store.save()

    def _check(self, embeddings: np.ndarray, what: str) -> np.ndarray:
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or embeddings.shape[1] != self.dim or embeddings.shape[0] == 0:
            raise ModelError(
                f"{what} must be [n >= 1, {self.dim}] {self.model} embeddings, got shape {embeddings.shape}"
            )
        if not np.all(np.isfinite(embeddings)):
            raise ModelError(f"{what} contain NaN or infinite values; check the audio they came from")
        return embeddings

    def enrol(self, name: str, embeddings: np.ndarray, sources: list[str], replace: bool = False) -> None:
        """Add embeddings [n, dim] of speaker `name` (appended to earlier ones unless `replace`)."""
        if not _NAME.match(name):
            raise ConfigError(f"speaker name {name!r} must be letters, digits, '_', '.' or '-' (no spaces or '/')")
        embeddings = self._check(embeddings, f"embeddings of {name!r}")
        if len(sources) != len(embeddings):
            raise ConfigError(f"{len(embeddings)} embeddings but {len(sources)} source names")
        if name in self.speakers and not replace:
            embeddings = np.concatenate([self.speakers[name], embeddings])
            sources = self.sources[name] + list(sources)
        self.speakers[name] = embeddings
        self.sources[name] = list(sources)

    def set_cohort(self, embeddings: np.ndarray, sources: list[str]) -> None:
        """Set the s-norm cohort (impostor speakers disjoint from the enrolled ones and the test audio)."""
        if self.plda is not None:
            raise ConfigError(f"{self.path} scores with PLDA, which replaces s-norm: no cohort")
        self.cohort = self._check(embeddings, "cohort embeddings")
        self.cohort_sources = list(sources)

    def set_plda(self, plda: Plda) -> None:
        """Score with PLDA from now on (fitted on embeddings of this store's model, of speakers not enrolled)."""
        if self.cohort is not None:
            raise ConfigError(f"{self.path} has an s-norm cohort; PLDA replaces s-norm: use a store without one")
        self.plda = plda
        self.threshold = None  # a cosine threshold means nothing for log-likelihood ratios

    def set_threshold(self, threshold: Threshold) -> None:
        if threshold.snorm and self.cohort is None:
            raise ConfigError("an s-norm threshold needs the cohort it was calibrated with; set the cohort first")
        if threshold.backend != ("plda" if self.plda is not None else "cosine"):
            raise ConfigError(f"a {threshold.backend} threshold does not fit this store's scores")
        self.threshold = threshold

    def centroid(self, name: str) -> np.ndarray:
        """Unit-length mean embedding [dim] of `name`."""
        if name not in self.speakers:
            known = ", ".join(sorted(self.speakers)) or "none yet"
            raise ConfigError(f"speaker {name!r} is not enrolled in {self.path} (enrolled: {known})")
        return centroid(self.speakers[name])

    def centroids(self) -> dict[str, np.ndarray]:
        """Every enrolled speaker's unit-length centroid [dim], in name order."""
        return {name: self.centroid(name) for name in sorted(self.speakers)}

    def save(self) -> None:
        """Write the store (each file replaced atomically, store.json last so readers never see a half store)."""
        self.path.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.path / "embeddings.npz") as f:
            write_npz(f, self.speakers)
        if self.cohort is not None:
            with atomic_write(self.path / "cohort.npy") as f:
                np.save(f, self.cohort)
        if self.plda is not None:
            with atomic_write(self.path / "plda.npz") as f:
                write_npz(f, dataclasses.asdict(self.plda))
        meta = {
            "format": FORMAT,
            "model": self.model,
            "dim": self.dim,
            "speakers": {name: self.sources[name] for name in sorted(self.speakers)},
            "cohort": self.cohort_sources if self.cohort is not None else None,
            "threshold": dataclasses.asdict(self.threshold) if self.threshold else None,
            "plda": self.plda is not None,
        }
        with atomic_write(self.path / "store.json", "w", encoding="utf-8") as f:
            f.write(json.dumps(meta, indent=1) + "\n")


def write_npz(file: object, arrays: dict[str, np.ndarray]) -> None:
    """An .npz (what `np.load` reads) of `arrays` by name. Not `np.savez(**arrays)`: a speaker named "file" or
    "allow_pickle" would collide with its own parameters (a crash, or an embedding silently not saved)."""
    with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
