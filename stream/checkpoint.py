"""Read PyTorch checkpoints (`torch.save` zip format) into NumPy without importing torch.

Why: converting upstream weights is part of first use (`stream models convert`), and the run path must not
depend on torch. A `.pt` zip holds `data.pkl` (a pickle whose tensors point at raw storage files by key) and
`data/<key>` (little-endian raw bytes). We unpickle with a restricted loader that rebuilds tensors as
NumPy arrays and replaces any other class (Lightning hyper-parameters, pyannote objects) with an inert stub.
"""

from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from stream.errors import ModelError

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


_SAFE_BUILTINS = {"set": set, "frozenset": frozenset, "dict": dict, "list": list, "tuple": tuple, "slice": slice}


class _Stub:
    """Stands in for any class the checkpoint pickles that is not a tensor or a plain container."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _StorageType:
    def __init__(self, name: str) -> None:
        self.dtype = _STORAGE_DTYPES[name]


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple[int, ...], stride: tuple[int, ...], *_: Any) -> np.ndarray:
    if not size:
        return storage[offset : offset + 1].reshape(()).copy()
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride)
    )
    return np.ascontiguousarray(view)


def _rebuild_parameter(data: np.ndarray, *_: Any) -> np.ndarray:
    return data


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: Any, archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(file)
        self._archive = archive
        self._prefix = prefix
        self._storages: dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "builtins" and name in _SAFE_BUILTINS:
            return _SAFE_BUILTINS[name]
        return _Stub

    def persistent_load(self, pid: Any) -> np.ndarray:
        kind, storage_type, key, _location, numel = pid
        if kind != "storage":
            raise pickle.UnpicklingError(f"unsupported persistent id {kind!r}")
        if key not in self._storages:
            raw = self._archive.read(f"{self._prefix}data/{key}")
            dtype = storage_type.dtype if isinstance(storage_type, _StorageType) else np.float32
            self._storages[key] = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"), count=numel)
        return self._storages[key]


def load_torch_checkpoint(path: Path) -> Any:
    """Load a `torch.save` zip file as nested dicts/lists of NumPy arrays (unknown objects become stubs)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"checkpoint {path} does not exist")
    if not zipfile.is_zipfile(path):
        raise ModelError(
            f"checkpoint {path} is not a PyTorch zip checkpoint (legacy format or corrupt); "
            "re-save it with torch>=1.6 `torch.save(obj, path)`"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            pkl = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
            if pkl is None:
                raise ModelError(f"checkpoint {path} has no data.pkl: not a torch.save file")
            prefix = pkl[: -len("data.pkl")]
            with archive.open(pkl) as f:
                return _Unpickler(f, archive, prefix).load()
    except (zipfile.BadZipFile, pickle.UnpicklingError, KeyError, EOFError, ValueError) as exc:
        raise ModelError(f"checkpoint {path} is corrupt or truncated ({exc}); restore it from its source") from exc


def state_dict(obj: Any, key: str | None = None) -> dict[str, np.ndarray]:
    """The flat `name -> array` tensor dict of a checkpoint, optionally under `key` (e.g. "state_dict")."""
    if key is not None:
        if not isinstance(obj, dict) or key not in obj:
            raise ModelError(f"checkpoint has no {key!r} entry")
        obj = obj[key]
    if not isinstance(obj, dict):
        raise ModelError("checkpoint is not a state dict")
    return {k: v for k, v in obj.items() if isinstance(v, np.ndarray)}
